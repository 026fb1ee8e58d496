//! `citywatch probe` against the real RTSP server, with and without authentication.

use std::time::Duration;

use citywatch::probe::{ProbeError, probe};

use crate::common::*;

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn reports_codec_resolution_and_rate() {
    let server = Server::start(&["--audio-only-mount", "radio"]);
    let r = probe(&server.url("vtest"), T).await.unwrap();
    assert_eq!(r.codec, "H264");
    assert_eq!((r.width, r.height), (Some(768), Some(576)));
    assert_eq!(r.fps, Some(10.0));
    assert_eq!(r.auth, "none");
    assert!(r.methods.iter().any(|m| m == "DESCRIBE"), "{:?}", r.methods);

    let r = probe(&server.url("bikes"), T).await.unwrap();
    assert_eq!((r.width, r.height), (Some(640), Some(272)));
    assert_eq!(r.fps, Some(25.0));

    assert_eq!(
        probe(&server.url("nothing-here"), T).await.unwrap_err(),
        ProbeError::NotFound
    );
    assert_eq!(
        probe(&server.url("radio"), T).await.unwrap_err(),
        ProbeError::NotVideo("audio".into())
    );
}

#[tokio::test]
async fn basic_and_digest_authentication() {
    for method in ["basic", "digest"] {
        let server = Server::start(&["--auth", "op:Str0ng!pw", "--auth-method", method]);
        let r = probe(&server.url_with_auth("op", "Str0ng!pw", "vtest"), T)
            .await
            .unwrap();
        assert_eq!(r.auth, method);
        assert_eq!(r.codec, "H264");
        assert!(!r.url.contains("Str0ng"), "{}", r.url);

        let wrong = probe(&server.url_with_auth("op", "guess", "vtest"), T)
            .await
            .unwrap_err();
        assert!(matches!(wrong, ProbeError::Unauthorized(_)), "{wrong:?}");
        let none = probe(&server.url("vtest"), T).await.unwrap_err();
        assert!(
            none.to_string().contains("401") && none.to_string().contains("has none"),
            "{none}"
        );
    }
}

#[tokio::test]
async fn refused_and_silent_servers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = probe(&format!("rtsp://127.0.0.1:{closed}/x"), T)
        .await
        .unwrap_err();
    assert!(matches!(e, ProbeError::Refused(_)), "{e:?}");

    // Accepts the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let (sock, _) = silent.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(sock);
    });
    let e = probe(
        &format!("rtsp://127.0.0.1:{port}/x"),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("timed out after 0.5 s waiting for a reply"),
        "{e}"
    );
    keep.abort();

    let e = probe("htp://127.0.0.1/x", T).await.unwrap_err();
    assert!(e.to_string().contains("unsupported scheme \"htp\""), "{e}");
}
