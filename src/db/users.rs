//! Users.

use diesel::prelude::*;

use crate::db::models::UserRow;
use crate::db::schema::users;
use crate::db::AnyConnection;

pub fn insert(conn: &mut AnyConnection, user: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table).values(user).execute(conn).map(|_| ())
}

pub fn find_by_email(conn: &mut AnyConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table.filter(users::email.eq(email)).select(UserRow::as_select()).first(conn).optional()
}

pub fn find(conn: &mut AnyConnection, id: &str) -> QueryResult<Option<UserRow>> {
    users::table.find(id).select(UserRow::as_select()).first(conn).optional()
}
