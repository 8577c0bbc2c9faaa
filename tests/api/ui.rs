//! The web UI is served by the binary itself.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_ui_is_served_with_its_assets_and_a_fallback() {
    let app = spawn_app().await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.address)).send();

    let mut index = get("/").await.unwrap();
    assert_eq!(index.status(), 200);
    let html = String::from_utf8(index.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("/js/app.js"), "{html}");
    assert!(html.contains(r#"<link rel="icon" href="/favicon.svg" type="image/svg+xml">"#), "{html}");

    let mut icon = get("/favicon.svg").await.unwrap();
    assert_eq!(icon.status(), 200, "the favicon is served by the binary");
    assert_eq!(icon.headers().get("content-type").unwrap().to_str().unwrap(), "image/svg+xml");
    assert!(String::from_utf8(icon.body().await.unwrap().to_vec()).unwrap().starts_with("<svg"));

    let script = get("/js/app.js").await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/javascript"));
    let etag = script.headers().get("etag").unwrap().clone();
    let again = app
        .client
        .get(format!("{}/js/app.js", app.address))
        .insert_header(("If-None-Match", etag))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "an unchanged asset is not sent again");

    let mut deep = get("/sessions/somewhere").await.unwrap();
    assert_eq!(deep.status(), 200, "unknown paths get the app shell");
    assert!(String::from_utf8(deep.body().await.unwrap().to_vec()).unwrap().contains("<main"));

    for page in ["/sessions", "/sessions/somewhere", "/office-hours/manage"] {
        assert_eq!(get(page).await.unwrap().status(), 200, "{page} may be a page: the app shell");
    }
    for file in
        ["/no-such-file.js", "/js/nope.js", "/js/pages/nope", "/styles/missing.css", "/favicon.ico", "/a/b/c.png"]
    {
        let mut missing = get(file).await.unwrap();
        assert_eq!(missing.status(), 404, "{file} is an unknown file, not the app page");
        let body = String::from_utf8(missing.body().await.unwrap().to_vec()).unwrap();
        assert!(!body.contains("<main"), "{file}: {body}");
    }

    let (status, body) = app.request("GET", "/api/nothing-here", None, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "the API never falls back to HTML");
}
