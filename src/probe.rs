//! `citywatch probe URL`: checks a camera the way a platform engineer would, with RTSP
//! OPTIONS and DESCRIBE over tokio, Basic or Digest authentication, and the SDP read for
//! codec, resolution and frame rate; then a SETUP of the video over each RTP transport (TCP
//! interleaved, as `run` asks first, and UDP), to say which ones the server accepts. Every
//! failure has a plain reason.

use std::time::Duration;

use base64::Engine;
use md5::{Digest as _, Md5};
use rtsp_types::{Message, Method, Request, Response, StatusCode, Version, headers};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::core::redact_url;

/// What the probe found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeReport {
    /// Redacted.
    pub url: String,
    pub server: Option<String>,
    pub methods: Vec<String>,
    /// "none", "basic" or "digest".
    pub auth: String,
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    /// Other media in the stream (audio, metadata).
    pub other_media: Vec<String>,
    /// What the server said to a SETUP over each RTP transport: `ok`, or its refusal
    /// (`461 Unsupported transport`).
    pub transports: std::collections::BTreeMap<String, String>,
    /// The transport `run` will stream over with the default `transport = "tcp"`: TCP, or
    /// UDP when the server refuses TCP.
    pub transport: String,
    pub elapsed_ms: u64,
}

/// Why a probe failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProbeError {
    #[error("bad URL: {0}")]
    BadUrl(String),
    #[error("connection refused by {0}")]
    Refused(String),
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("timed out after {0:.1} s {1}")]
    Timeout(f64, &'static str),
    #[error("401 Unauthorized: {0}")]
    Unauthorized(String),
    #[error("404 Not Found: the server has no stream at this path")]
    NotFound,
    #[error("the server answered {0} {1}")]
    Status(u16, String),
    #[error("the stream has no video (media: {0})")]
    NotVideo(String),
    #[error("unsupported video codec {0:?} (supported: H264, H265)")]
    UnsupportedCodec(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the server set up the stream over no RTP transport ({0})")]
    NoTransport(String),
}

struct Target {
    host: String,
    port: u16,
    /// Request URI, without credentials.
    uri: url::Url,
    user: Option<String>,
    pass: Option<String>,
}

fn parse_target(raw: &str) -> Result<Target, ProbeError> {
    let bad = |m: String| ProbeError::BadUrl(format!("{}: {m}", redact_url(raw)));
    let mut u = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    if u.scheme() != "rtsp" {
        return Err(bad(format!(
            "unsupported scheme {:?} (expected rtsp)",
            u.scheme()
        )));
    }
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host".into()))?
        .to_string();
    let port = u.port().unwrap_or(554);
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = (!u.username().is_empty()).then(|| dec(u.username()));
    let pass = u.password().map(dec);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok(Target {
        host,
        port,
        uri: u,
        user,
        pass,
    })
}

/// A connection that sends requests and reads whole responses.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    timeout: Duration,
}

impl Conn {
    async fn request(
        &mut self,
        method: Method,
        uri: &url::Url,
        extra: &[(headers::HeaderName, String)],
    ) -> Result<Response<Vec<u8>>, ProbeError> {
        self.cseq += 1;
        let mut b = Request::builder(method, Version::V1_0)
            .request_uri(uri.clone())
            .header(headers::CSEQ, self.cseq.to_string())
            .header(headers::USER_AGENT, "citywatch-probe");
        for (k, v) in extra {
            b = b.header(k.clone(), v.clone());
        }
        let req = b.empty();
        let mut out = Vec::new();
        req.write(&mut out)
            .map_err(|e| ProbeError::Protocol(e.to_string()))?;
        tokio::time::timeout(self.timeout, self.stream.write_all(&out))
            .await
            .map_err(|_| ProbeError::Timeout(self.timeout.as_secs_f64(), "sending a request"))?
            .map_err(|e| ProbeError::Unreachable("server".into(), e.to_string()))?;
        loop {
            match Message::<Vec<u8>>::parse(&self.buf) {
                Ok((Message::Response(r), used)) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Ok((_, used)) => {
                    // Interleaved data or a server request: skip it.
                    self.buf.drain(..used);
                }
                Err(rtsp_types::ParseError::Incomplete(_)) => {
                    let mut chunk = [0u8; 8192];
                    let n = tokio::time::timeout(self.timeout, self.stream.read(&mut chunk))
                        .await
                        .map_err(|_| {
                            ProbeError::Timeout(self.timeout.as_secs_f64(), "waiting for a reply")
                        })?
                        .map_err(|e| ProbeError::Unreachable("server".into(), e.to_string()))?;
                    if n == 0 {
                        return Err(ProbeError::Protocol(
                            "the server closed the connection".into(),
                        ));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(rtsp_types::ParseError::Error) => {
                    return Err(ProbeError::Protocol("unparseable reply".into()));
                }
            }
        }
    }
}

/// The parameters of one `WWW-Authenticate` challenge.
#[derive(Debug, Clone, Default, PartialEq)]
struct Challenge {
    scheme: String,
    realm: String,
    nonce: String,
    qop: Option<String>,
    opaque: Option<String>,
}

/// Parses `WWW-Authenticate` values; a value may hold several challenges.
fn parse_challenges(values: &[&str]) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values {
        let mut current: Option<Challenge> = None;
        for part in split_params(v) {
            let part = part.trim();
            // A new challenge starts with a scheme word ("Digest realm=..." or "Basic").
            let (head, rest) = match part.split_once(' ') {
                Some((h, r)) if !h.contains('=') => (Some(h), r.trim()),
                _ if !part.contains('=') && !part.is_empty() => (Some(part), ""),
                _ => (None, part),
            };
            if let Some(h) = head {
                if let Some(c) = current.take() {
                    out.push(c);
                }
                current = Some(Challenge {
                    scheme: h.to_ascii_lowercase(),
                    ..Default::default()
                });
            }
            if let (Some(c), Some((k, val))) = (current.as_mut(), rest.split_once('=')) {
                let val = val.trim().trim_matches('"').to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "realm" => c.realm = val,
                    "nonce" => c.nonce = val,
                    "qop" => c.qop = Some(val),
                    "opaque" => c.opaque = Some(val),
                    _ => {}
                }
            }
        }
        if let Some(c) = current {
            out.push(c);
        }
    }
    out
}

/// Splits on commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, ch) in s.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn md5_hex(s: &str) -> String {
    let d = Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Authorization header for a Digest challenge (RFC 2617, as RTSP cameras use it).
fn digest_authorization(
    c: &Challenge,
    user: &str,
    pass: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{}:{pass}", c.realm));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let mut h = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\"",
        c.realm, c.nonce
    );
    let qop_auth = c
        .qop
        .as_deref()
        .is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    let response = if qop_auth {
        let nc = "00000001";
        let r = md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce));
        h.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        r
    } else {
        md5_hex(&format!("{ha1}:{}:{ha2}", c.nonce))
    };
    h.push_str(&format!(", response=\"{response}\""));
    if let Some(o) = &c.opaque {
        h.push_str(&format!(", opaque=\"{o}\""));
    }
    h
}

/// What the SDP says about the video.
#[derive(Debug, PartialEq)]
struct VideoInfo {
    /// The video media's `a=control` URL, as written (absolute, relative or `*`).
    control: Option<String>,
    codec: String,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
    other: Vec<String>,
}

fn read_sdp(body: &[u8]) -> Result<VideoInfo, ProbeError> {
    let sdp = sdp_types::Session::parse(body)
        .map_err(|e| ProbeError::Protocol(format!("bad SDP: {e}")))?;
    let mut other = Vec::new();
    let mut video = None;
    for m in &sdp.medias {
        if m.media == "video" && video.is_none() {
            video = Some(m);
        } else {
            other.push(m.media.clone());
        }
    }
    let Some(v) = video else {
        return Err(ProbeError::NotVideo(if other.is_empty() {
            "none".into()
        } else {
            other.join(", ")
        }));
    };
    let pt = v.fmt.split_whitespace().next().unwrap_or("");
    let attr = |name: &'static str| {
        v.attributes
            .iter()
            .filter(move |a| a.attribute == name)
            .filter_map(|a| a.value.as_deref())
    };
    let codec = attr("rtpmap")
        .find_map(|val| {
            let (p, enc) = val.split_once(' ')?;
            (p == pt).then(|| enc.split('/').next().unwrap_or(enc).to_ascii_uppercase())
        })
        .unwrap_or_else(|| match pt {
            "26" => "JPEG".into(),
            "32" => "MPV".into(),
            _ => "unknown".into(),
        });
    let mut info = VideoInfo {
        control: attr("control").next().map(str::to_string),
        codec: codec.clone(),
        width: None,
        height: None,
        fps: attr("framerate").find_map(|f| f.trim().parse().ok()),
        other,
    };
    if let Some((w, h)) = attr("x-dimensions")
        .chain(attr("framesize").filter_map(|f| f.split_once(' ').map(|x| x.1)))
        .find_map(|d| {
            let (w, h) = d.split_once([',', '-'])?;
            Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
        })
    {
        info.width = Some(w);
        info.height = Some(h);
    }
    match codec.as_str() {
        "H264" => {
            if let Some((w, h, fps)) = attr("fmtp").find_map(|f| sps_from_fmtp(f, pt)) {
                info.width = Some(w);
                info.height = Some(h);
                info.fps = info.fps.or(fps);
            }
            Ok(info)
        }
        "H265" => Ok(info),
        _ => Err(ProbeError::UnsupportedCodec(codec)),
    }
}

/// Decodes the SPS in `sprop-parameter-sets` for resolution and frame rate.
fn sps_from_fmtp(fmtp: &str, pt: &str) -> Option<(u32, u32, Option<f64>)> {
    use h264_reader::nal::Nal;
    let (p, params) = fmtp.split_once(' ')?;
    if p != pt {
        return None;
    }
    let sets = params.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == "sprop-parameter-sets").then_some(v)
    })?;
    for b64 in sets.split(',') {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            continue;
        };
        if bytes.first().map(|b| b & 0x1f) != Some(7) {
            continue;
        }
        let nal = h264_reader::nal::RefNal::new(&bytes, &[], true);
        let Ok(sps) = h264_reader::nal::sps::SeqParameterSet::from_bits(nal.rbsp_bits()) else {
            continue;
        };
        let (w, h) = sps.pixel_dimensions().ok()?;
        return Some((w, h, sps.fps()));
    }
    None
}

/// Probes one RTSP URL.
pub async fn probe(raw_url: &str, timeout: Duration) -> Result<ProbeReport, ProbeError> {
    let started = std::time::Instant::now();
    let t = parse_target(raw_url)?;
    let addr = format!("{}:{}", t.host, t.port);
    let stream = tokio::time::timeout(timeout, TcpStream::connect(&addr))
        .await
        .map_err(|_| ProbeError::Timeout(timeout.as_secs_f64(), "connecting"))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ProbeError::Refused(addr.clone()),
            _ => ProbeError::Unreachable(addr.clone(), e.to_string()),
        })?;
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        cseq: 0,
        timeout,
    };

    let options = conn.request(Method::Options, &t.uri, &[]).await?;
    let server = options
        .header(&headers::SERVER)
        .map(|v| v.as_str().to_string());
    let methods = options
        .header(&headers::PUBLIC)
        .map(|v| {
            v.as_str()
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default();

    let accept = [(headers::ACCEPT, "application/sdp".to_string())];
    let mut auth_used = "none";
    let mut challenge: Option<Challenge> = None;
    let mut resp = conn.request(Method::Describe, &t.uri, &accept).await?;
    if resp.status() == StatusCode::Unauthorized {
        let (Some(user), Some(pass)) = (&t.user, &t.pass) else {
            return Err(ProbeError::Unauthorized(
                "the camera requires credentials and the URL has none".into(),
            ));
        };
        let challenges = challenges_of(&resp);
        challenge = challenges.iter().find(|c| c.scheme == "digest").cloned();
        let header = if challenge.is_some() {
            auth_used = "digest";
            authorization(challenge.as_ref(), user, pass, "DESCRIBE", t.uri.as_str())
        } else if challenges.iter().any(|c| c.scheme == "basic") {
            auth_used = "basic";
            authorization(None, user, pass, "DESCRIBE", t.uri.as_str())
        } else {
            return Err(ProbeError::Unauthorized(
                "the camera offers no Basic or Digest authentication".into(),
            ));
        };
        let mut extra = accept.to_vec();
        extra.push((headers::AUTHORIZATION, header));
        resp = conn.request(Method::Describe, &t.uri, &extra).await?;
        if resp.status() == StatusCode::Unauthorized {
            return Err(ProbeError::Unauthorized(
                "the credentials were rejected".into(),
            ));
        }
    }
    match resp.status() {
        StatusCode::Ok => {}
        StatusCode::NotFound => return Err(ProbeError::NotFound),
        s => {
            return Err(ProbeError::Status(
                u16::from(s),
                resp.reason_phrase().to_string(),
            ));
        }
    }
    let info = read_sdp(resp.body())?;
    let base = resp
        .header(&headers::CONTENT_BASE)
        .and_then(|b| url::Url::parse(b.as_str()).ok());
    let track = control_url(&t.uri, base.as_ref(), info.control.as_deref());
    let creds = match (&t.user, &t.pass, auth_used) {
        (Some(u), Some(p), "digest" | "basic") => Some((u.as_str(), p.as_str())),
        _ => None,
    };
    let mut transports = std::collections::BTreeMap::new();
    for (name, spec) in [
        ("tcp", "RTP/AVP/TCP;unicast;interleaved=0-1"),
        ("udp", "RTP/AVP;unicast;client_port=50000-50001"),
    ] {
        let said = try_setup(&addr, &track, spec, creds, challenge.as_ref(), timeout).await;
        transports.insert(name.to_string(), said);
    }
    let transport = ["tcp", "udp"]
        .into_iter()
        .find(|n| transports.get(*n).is_some_and(|s| s == "ok"))
        .ok_or_else(|| {
            ProbeError::NoTransport(
                transports
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?
        .to_string();
    Ok(ProbeReport {
        url: redact_url(raw_url),
        server,
        methods,
        auth: auth_used.into(),
        codec: info.codec,
        width: info.width,
        height: info.height,
        fps: info.fps,
        other_media: info.other,
        transports,
        transport,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// The challenges of a 401 answer's `WWW-Authenticate` headers.
fn challenges_of(resp: &Response<Vec<u8>>) -> Vec<Challenge> {
    let values: Vec<&str> = resp
        .headers()
        .filter(|(k, _)| **k == headers::WWW_AUTHENTICATE)
        .map(|(_, v)| v.as_str())
        .collect();
    parse_challenges(&values)
}

/// An `Authorization` value for `method` on `uri`: Digest with the server's challenge, or
/// Basic without one.
fn authorization(c: Option<&Challenge>, user: &str, pass: &str, method: &str, uri: &str) -> String {
    match c {
        Some(c) => {
            let cnonce = format!("{:016x}", fastrand::u64(..));
            digest_authorization(c, user, pass, method, uri, &cnonce)
        }
        None => {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            format!("Basic {token}")
        }
    }
}

/// The URL a SETUP of the video names: its `a=control`, absolute, or relative to the
/// DESCRIBE answer's Content-Base (else the request's URL); `*` or none is the stream's own.
fn control_url(uri: &url::Url, base: Option<&url::Url>, control: Option<&str>) -> url::Url {
    let Some(c) = control.filter(|c| *c != "*") else {
        return uri.clone();
    };
    if let Ok(abs) = url::Url::parse(c) {
        return abs;
    }
    let mut base = base.unwrap_or(uri).clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(c).unwrap_or_else(|_| uri.clone())
}

/// Sets the video up over one transport on a connection of its own, and tears it down:
/// `ok`, or what the server answered.
async fn try_setup(
    addr: &str,
    track: &url::Url,
    transport: &str,
    creds: Option<(&str, &str)>,
    challenge: Option<&Challenge>,
    timeout: Duration,
) -> String {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return format!("cannot connect: {e}"),
        Err(_) => return "timed out connecting".into(),
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        cseq: 0,
        timeout,
    };
    let setup = |auth: Option<String>| {
        let mut h = vec![(headers::TRANSPORT, transport.to_string())];
        if let Some(a) = auth {
            h.push((headers::AUTHORIZATION, a));
        }
        h
    };
    let auth = |c: Option<&Challenge>, method: &str, uri: &url::Url| {
        creds.map(|(u, p)| authorization(c, u, p, method, uri.as_str()))
    };
    let mut resp = match conn
        .request(
            Method::Setup,
            track,
            &setup(auth(challenge, "SETUP", track)),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return e.to_string(),
    };
    // A Digest nonce may hold for one connection only: answer this one's challenge once.
    let mut fresh = None;
    if resp.status() == StatusCode::Unauthorized && creds.is_some() {
        fresh = challenges_of(&resp)
            .into_iter()
            .find(|c| c.scheme == "digest");
        resp = match conn
            .request(
                Method::Setup,
                track,
                &setup(auth(fresh.as_ref(), "SETUP", track)),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return e.to_string(),
        };
    }
    if resp.status() != StatusCode::Ok {
        return format!("{} {}", u16::from(resp.status()), resp.reason_phrase());
    }
    if let Some(session) = resp.header(&headers::SESSION) {
        let id = session.as_str().split(';').next().unwrap_or("").to_string();
        let mut h = vec![(headers::SESSION, id)];
        if let Some(a) = auth(fresh.as_ref().or(challenge), "TEARDOWN", track) {
            h.push((headers::AUTHORIZATION, a));
        }
        // Best effort: the connection closing ends the session too.
        let _ = conn.request(Method::Teardown, track, &h).await;
    }
    "ok".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_the_rfc_2617_example() {
        // RFC 2617 section 3.5, with qop=auth.
        let c = Challenge {
            scheme: "digest".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            qop: Some("auth,auth-int".into()),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
        };
        let h = digest_authorization(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert!(
            h.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{h}"
        );
    }

    #[test]
    fn challenges_parse_with_quotes_and_several_schemes() {
        let got = parse_challenges(&[
            r#"Digest realm="IP Camera(10789)", nonce="a1b2,c3", stale="FALSE""#,
            "Basic realm=\"cam\"",
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].scheme, "digest");
        assert_eq!(got[0].realm, "IP Camera(10789)");
        assert_eq!(got[0].nonce, "a1b2,c3");
        assert_eq!(got[1].scheme, "basic");
    }

    #[test]
    fn sdp_gives_codec_resolution_and_rate() {
        // SPS for 768x576 (from the shipped vtest sample).
        let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=s\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=framerate:10\r\nm=audio 0 RTP/AVP 8\r\n";
        let info = read_sdp(sdp).unwrap();
        assert_eq!(info.codec, "H264");
        assert_eq!(info.fps, Some(10.0));
        assert_eq!(info.other, vec!["audio"]);
    }

    #[test]
    fn sdp_without_video_or_with_odd_codec_fails_clearly() {
        let audio = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=s\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
        assert_eq!(
            read_sdp(audio).unwrap_err(),
            ProbeError::NotVideo("audio".into())
        );
        let vp8 = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=s\r\nt=0 0\r\nm=video 0 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n";
        assert_eq!(
            read_sdp(vp8).unwrap_err(),
            ProbeError::UnsupportedCodec("VP8".into())
        );
    }

    #[test]
    fn bad_urls_never_show_the_password() {
        let e = parse_target("http://u:hunter2@h/x")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unsupported scheme"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
