//! Who is calling: the signed-in user of a request, from its bearer token.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::auth::{bearer_token, AuthUser};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = AppResult<AuthUser>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal("AppState missing"))?;
            let token =
                token.ok_or_else(|| AppError::unauthorized("Sign in first: send Authorization: Bearer <token>."))?;
            state.auth.authenticate(&token).await
        })
    }
}
