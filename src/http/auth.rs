//! Accounts and sessions of the API itself: register, login, logout, me.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{bearer_token, hash_password, new_token, token_digest, token_fingerprint, verify_password, AuthUser};
use crate::db::models::{AuthTokenRow, UserRow};
use crate::db::{self, to_db_time};
use crate::domain::{input, Role};
use crate::engine::DisconnectReason;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    pub name: String,
    /// `student` or `instructor`.
    pub role: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthResponse {
    pub token: String,
    pub user: AuthUser,
}

const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_NAME_CHARS: usize = 100;
const MAX_EMAIL_BYTES: usize = 254;

fn validate_registration(body: &RegisterRequest) -> AppResult<(String, Role)> {
    input::single_line("The email", &body.email)?;
    input::single_line("The name", &body.name)?;
    let email = body.email.trim().to_ascii_lowercase();
    let (local, domain) = email.split_once('@').unwrap_or(("", ""));
    if local.is_empty() || !domain.contains('.') || email.len() > MAX_EMAIL_BYTES || email.contains(char::is_whitespace)
    {
        return Err(AppError::bad_request("invalid_email", "That does not look like an email address."));
    }
    let chars = body.password.chars().count();
    if chars < MIN_PASSWORD_CHARS || body.password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::bad_request(
            "weak_password",
            format!("Passwords need at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    let name_chars = body.name.trim().chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        return Err(AppError::bad_request("invalid_name", format!("A name needs 1 to {MAX_NAME_CHARS} characters.")));
    }
    match Role::parse(&body.role) {
        Some(role @ (Role::Student | Role::Instructor)) => Ok((email, role)),
        _ => Err(AppError::bad_request("invalid_role", "The role must be \"student\" or \"instructor\".")),
    }
}

/// The address a request came from, for the per-client attempt limit (the
/// peer: a deployment behind a proxy sees the proxy; see README).
fn client_of(req: &HttpRequest) -> String {
    req.peer_addr().map(|addr| addr.ip().to_string()).unwrap_or_default()
}

/// Stores a new token for the user and returns it.
async fn issue_token(state: &AppState, user_id: Uuid) -> AppResult<String> {
    let (token, digest) = new_token();
    let now = state.clock.now();
    let row = AuthTokenRow {
        token_hash: digest,
        user_id: user_id.to_string(),
        created_at: to_db_time(now),
        expires_at: to_db_time(now + Duration::seconds(state.config.token_ttl_secs)),
        revoked_at: None,
    };
    state.persistence.write(move |conn| db::tokens::insert(conn, &row)).await?;
    Ok(token)
}

#[utoipa::path(post, path = "/api/auth/register", request_body = RegisterRequest,
    responses((status = 201, body = AuthResponse), (status = 400, body = crate::error::ErrorEnvelope), (status = 409, body = crate::error::ErrorEnvelope)))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> AppResult<HttpResponse> {
    state.auth.attempts_by_client.attempt(&client_of(&req))?;
    let (email, role) = validate_registration(&body)?;
    let password = body.password.clone();
    let password_hash = state.auth.hashing.run(move || hash_password(&password)).await??;
    let row = UserRow {
        id: Uuid::new_v4().to_string(),
        email,
        name: body.name.trim().to_string(),
        role: role.as_str().to_string(),
        password_hash,
        created_at: to_db_time(state.clock.now()),
    };
    let user = AuthUser::from_row(&row)?;
    state.persistence.write(move |conn| db::users::insert(conn, &row)).await.map_err(|err| {
        if err.is_unique_violation() {
            AppError::conflict("email_taken", "An account with this email already exists.")
        } else {
            err.into()
        }
    })?;
    let token = issue_token(&state, user.id).await?;
    Ok(HttpResponse::Created().json(AuthResponse { token, user }))
}

#[utoipa::path(post, path = "/api/auth/login", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = crate::error::ErrorEnvelope)))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> AppResult<HttpResponse> {
    state.auth.attempts_by_client.attempt(&client_of(&req))?;
    input::single_line("The email", &body.email)?;
    let email = body.email.trim().to_ascii_lowercase();
    state.auth.attempts_by_account.attempt(&email)?;
    let found = state.db.read(move |conn| Ok(db::users::find_by_email(conn, &email)?)).await?;
    let password = body.password.clone();
    // Verify against a real hash even for an unknown email, so the answer
    // takes as long either way and does not reveal who has an account.
    let stored_hash = found.as_ref().map(|row| row.password_hash.clone());
    let verified = state
        .auth
        .hashing
        .run(move || match stored_hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                let _ = verify_password(&password, DUMMY_HASH);
                false
            }
        })
        .await?;
    let row = match (verified, found) {
        (true, Some(row)) => row,
        _ => {
            return Err(AppError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Wrong email or password.",
            ))
        }
    };
    let user = AuthUser::from_row(&row)?;
    let token = issue_token(&state, user.id).await?;
    Ok(HttpResponse::Ok().json(AuthResponse { token, user }))
}

/// An Argon2id hash of a random password, for timing-safe failed logins.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0b2bZ0h7wVdQ2iGxnF9m0fGk1y8z8bq7Vv0N3fP8Y5E";

#[utoipa::path(post, path = "/api/auth/logout", responses((status = 204), (status = 401, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn logout(state: web::Data<AppState>, req: HttpRequest, user: AuthUser) -> AppResult<HttpResponse> {
    let token = bearer_token(&req).ok_or_else(|| AppError::unauthorized("No token."))?;
    let digest = token_digest(&token);
    let now = to_db_time(state.clock.now());
    state.persistence.write(move |conn| db::tokens::revoke(conn, &digest, now)).await?;
    state.auth.forget(&token);
    // Sockets opened with the token stop working with it.
    state.registry.revoke_sockets_opened_with(user.id, token_fingerprint(&token), DisconnectReason::TokenRevoked);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/me", responses((status = 200, body = AuthUser), (status = 401, body = crate::error::ErrorEnvelope)),
    security(("bearer" = [])))]
pub async fn me(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(email: &str, password: &str, name: &str, role: &str) -> RegisterRequest {
        RegisterRequest { email: email.into(), password: password.into(), name: name.into(), role: role.into() }
    }

    #[test]
    fn registration_checks_each_field() {
        let ok = validate_registration(&request(" Ada@Example.com ", "long enough", "Ada", "student")).unwrap();
        assert_eq!(ok, ("ada@example.com".to_string(), Role::Student));
        let code = |r: RegisterRequest| validate_registration(&r).unwrap_err().body.code;
        assert_eq!(code(request("nope", "long enough", "Ada", "student")), "invalid_email");
        assert_eq!(code(request("a@b.c", "short", "Ada", "student")), "weak_password");
        assert_eq!(code(request("a@b.c", "long enough", " ", "student")), "invalid_name");
        assert_eq!(code(request("a@b.c", "long enough", "Ada", "admin")), "invalid_role");
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
