//! The browser UI: the files of `web/`, embedded into the release binary
//! (a debug build reads them from disk, so edits show on reload). A page
//! path (no file extension, not under an asset folder) that is not the API
//! falls back to `index.html`, the app's shell; an unknown file is a 404.

use actix_web::http::header::{self, CacheControl, CacheDirective, EntityTag};
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(fallback));
}

/// Whatever no route took: pages for GET and HEAD; 405 for a method no
/// route of this server takes at all (TRACE, CONNECT, ...); 404 otherwise.
async fn fallback(req: HttpRequest) -> HttpResponse {
    use actix_web::http::Method;
    let method = req.method();
    if method == Method::GET || method == Method::HEAD {
        return serve(req).await;
    }
    if [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS].contains(method) {
        return actix_web::ResponseError::error_response(&crate::error::AppError::not_found("route"));
    }
    let refusal = crate::error::AppError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("This server takes no {method} requests."),
    );
    let mut response = actix_web::ResponseError::error_response(&refusal);
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE"));
    response
}

async fn serve(req: HttpRequest) -> HttpResponse {
    let path = req.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "ws" {
        return actix_web::ResponseError::error_response(&crate::error::AppError::not_found("route"));
    }
    match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(file) => respond(&req, path, file),
        None if !is_page_route(path) => {
            actix_web::ResponseError::error_response(&crate::error::AppError::not_found("file"))
        }
        None => match Assets::get("index.html") {
            Some(index) => respond(&req, "index.html", index),
            None => actix_web::ResponseError::error_response(&crate::error::AppError::not_found("page")),
        },
    }
}

/// Whether a path that is no file of `web/` may be a page of the app (which
/// routes in the browser): not a file name (`/no-such-file.js`, `/x.png`)
/// and not under an asset folder (`/js/...`). Those are 404s, so a missing
/// script fails loudly instead of being answered with the app's HTML.
fn is_page_route(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    let has_extension = last.rfind('.').is_some_and(|dot| dot > 0 && dot + 1 < last.len());
    let asset_folder = path.split('/').next().is_some_and(|first| first == "js");
    !has_extension && !asset_folder
}

fn respond(req: &HttpRequest, path: &str, file: rust_embed::EmbeddedFile) -> HttpResponse {
    let etag = EntityTag::new_strong(hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_matches('"') == etag.tag());
    // The shell must always be revalidated; assets too (no build step adds
    // content hashes to their names), but an unchanged one costs a 304.
    let cache = CacheControl(vec![CacheDirective::NoCache]);
    if fresh {
        return HttpResponse::NotModified().insert_header(cache).insert_header(header::ETag(etag)).finish();
    }
    let mime = if path.ends_with(".js") || path.ends_with(".mjs") {
        "text/javascript; charset=utf-8".to_string()
    } else {
        file.metadata.mimetype().to_string()
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header(cache)
        .insert_header(header::ETag(etag))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(file.data.into_owned())
}
