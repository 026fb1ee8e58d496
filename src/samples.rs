//! `citywatch serve-samples`: a loopback RTSP server that loops every H.264 file in a folder.
//!
//! Each file is demuxed once into memory; a shared media per file replays its access units
//! from an `appsrc`, shifting timestamps on every loop, so the stream never ends and costs
//! no decoding or encoding. Tests kill, restart and freeze this server to exercise ingest.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMethod {
    Basic,
    Digest,
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub dir: PathBuf,
    pub address: String,
    /// 0 picks a free port.
    pub port: u16,
    /// `user:password` required of clients.
    pub auth: Option<(String, String)>,
    pub auth_method: AuthMethod,
    /// Also mount an audio-only stream under this name (for testing "no video" handling).
    pub audio_only_mount: Option<String>,
    /// Offer RTP over UDP only: a client asking for TCP interleaving is refused with
    /// `461 Unsupported transport`, as some cameras and restreamers do.
    pub udp_only: bool,
}

/// One file's encoded video, ready to be replayed.
struct Clip {
    caps: gst::Caps,
    units: Vec<gst::Buffer>,
    /// Stream time of one full pass.
    duration: gst::ClockTime,
}

/// Demuxes a file's H.264 video into access units.
fn load_clip(path: &Path) -> anyhow::Result<Clip> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! parsebin ! h264parse config-interval=-1 ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=out sync=false",
        path.display()
    ))
    .context("building the demux pipeline")?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("no appsink")?;
    pipeline.set_state(gst::State::Playing)?;
    let mut units = Vec::new();
    let mut caps = None;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        if caps.is_none() {
            caps = sample.caps_owned();
        }
        if let Some(b) = sample.buffer_owned() {
            units.push(b);
        }
    }
    let bus = pipeline.bus().context("no bus")?;
    let err = bus
        .pop_filtered(&[gst::MessageType::Error])
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        });
    pipeline.set_state(gst::State::Null)?;
    if let Some(e) = err {
        bail!("{e}");
    }
    let caps = caps.context("no H.264 video found")?;
    if units.is_empty() {
        bail!("no video frames");
    }
    let first = units[0].pts().unwrap_or(gst::ClockTime::ZERO);
    let last = units.iter().filter_map(|b| b.pts()).max().unwrap_or(first);
    let frame = units
        .last()
        .and_then(|b| b.duration())
        .unwrap_or(gst::ClockTime::from_mseconds(40));
    // Rebase so every pass starts at zero.
    for b in &mut units {
        let b = b.make_mut();
        if let Some(p) = b.pts() {
            b.set_pts(p.saturating_sub(first));
        }
        if let Some(d) = b.dts() {
            b.set_dts(d.saturating_sub(first));
        }
    }
    Ok(Clip {
        caps,
        units,
        duration: last.saturating_sub(first) + frame,
    })
}

/// State of one playing media: where in the clip, and how many passes so far.
struct Cursor {
    next: usize,
    offset: gst::ClockTime,
}

fn configure_media(media: &rtsp::RTSPMedia, clip: Arc<Clip>) {
    let element = media.element();
    let Some(appsrc) = element
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name_recurse_up("src"))
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
    else {
        return;
    };
    appsrc.set_caps(Some(&clip.caps));
    appsrc.set_format(gst::Format::Time);
    let cursor = Mutex::new(Cursor {
        next: 0,
        offset: gst::ClockTime::ZERO,
    });
    appsrc.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let mut c = cursor.lock();
                let mut buf = clip.units[c.next].copy();
                {
                    let b = buf.make_mut();
                    if let Some(p) = b.pts() {
                        b.set_pts(p + c.offset);
                    }
                    if let Some(d) = b.dts() {
                        b.set_dts(d + c.offset);
                    }
                }
                c.next += 1;
                if c.next == clip.units.len() {
                    c.next = 0;
                    c.offset += clip.duration;
                }
                drop(c);
                let _ = src.push_buffer(buf);
            })
            .build(),
    );
}

/// A running server; dropping it does not stop it: call [`SampleServer::run`].
pub struct SampleServer {
    server: rtsp::RTSPServer,
    pub mounts: Vec<String>,
}

impl SampleServer {
    pub fn start(opts: &ServeOptions) -> anyhow::Result<(Self, u16)> {
        gst::init()?;
        let server = rtsp::RTSPServer::new();
        server.set_address(&opts.address);
        server.set_service(&opts.port.to_string());
        let mounts = server.mount_points().context("no mount points")?;

        if let Some((user, pass)) = &opts.auth {
            let auth = rtsp::RTSPAuth::new();
            let token = rtsp::RTSPToken::builder()
                .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
                .build();
            match opts.auth_method {
                AuthMethod::Basic => {
                    auth.add_basic(&rtsp::RTSPAuth::make_basic(user, pass), &token);
                    auth.set_supported_methods(gstreamer_rtsp::RTSPAuthMethod::Basic);
                }
                AuthMethod::Digest => {
                    auth.add_digest(user, pass, &token);
                    auth.set_supported_methods(gstreamer_rtsp::RTSPAuthMethod::Digest);
                }
            }
            server.set_auth(Some(&auth));
        }
        let role = |factory: &rtsp::RTSPMediaFactory| {
            if opts.auth.is_some() {
                let s = gst::Structure::builder("viewer")
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build();
                factory.add_role_from_structure(&s);
            }
        };

        let mut names = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&opts.dir)
            .with_context(|| format!("reading {}", opts.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "mp4" | "mkv" | "mov" | "h264" | "ts"))
            })
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .context("file name")?
                .to_string();
            let clip = match load_clip(&path) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping file: not servable H.264");
                    continue;
                }
            };
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(
                "( appsrc name=src is-live=false format=time ! h264parse config-interval=-1 ! \
                 rtph264pay name=pay0 pt=96 config-interval=-1 )",
            );
            factory.set_shared(true);
            if opts.udp_only {
                factory.set_protocols(gstreamer_rtsp::RTSPLowerTrans::UDP);
            }
            factory.connect_media_configure(move |_f, media| configure_media(media, clip.clone()));
            role(&factory);
            mounts.add_factory(&format!("/{name}"), factory);
            names.push(name);
        }
        if let Some(name) = &opts.audio_only_mount {
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(
                "( audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! \
                 audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay0 pt=8 )",
            );
            factory.set_shared(true);
            role(&factory);
            mounts.add_factory(&format!("/{name}"), factory);
            names.push(name.clone());
        }
        if names.is_empty() {
            bail!("no servable video files in {}", opts.dir.display());
        }
        server
            .attach(None)
            .context("binding the RTSP server (is the port in use?)")?;
        let port = u16::try_from(server.bound_port()).context("server is not bound")?;
        Ok((
            Self {
                server,
                mounts: names,
            },
            port,
        ))
    }

    /// Serves until the process is stopped.
    pub fn run(self) {
        let main_loop = gst::glib::MainLoop::new(None, false);
        main_loop.run();
        drop(self.server);
    }
}
