//! Login tokens, stored as SHA-256 digests.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::models::{AuthTokenRow, UserRow};
use crate::db::schema::{auth_tokens, users};
use crate::db::AnyConnection;

pub fn insert(conn: &mut AnyConnection, token: &AuthTokenRow) -> QueryResult<()> {
    diesel::insert_into(auth_tokens::table).values(token).execute(conn).map(|_| ())
}

/// The user a token belongs to, with the token's expiry, if the token was
/// issued and not revoked. Expiry is the caller's to judge (its clock).
pub fn find_owner(conn: &mut AnyConnection, token_hash: &str) -> QueryResult<Option<(UserRow, NaiveDateTime)>> {
    auth_tokens::table
        .inner_join(users::table)
        .filter(auth_tokens::token_hash.eq(token_hash))
        .filter(auth_tokens::revoked_at.is_null())
        .select((UserRow::as_select(), auth_tokens::expires_at))
        .first(conn)
        .optional()
}

pub fn revoke(conn: &mut AnyConnection, token_hash: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(auth_tokens::table.find(token_hash)).set(auth_tokens::revoked_at.eq(Some(at))).execute(conn)
}
