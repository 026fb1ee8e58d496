//! The `citywatch` command line. Errors become messages and exit codes here, at the edge.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use citywatch::config::PipelineConfig;
use citywatch::core::{Shutdown, SystemClock};
use citywatch::run::{RunOptions, StatusFormat};
use citywatch::samples::{AuthMethod, SampleServer, ServeOptions};

#[derive(Parser)]
#[command(
    name = "citywatch",
    version,
    about = "Watches city cameras and files evidence-backed cases"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the cameras of a pipeline config and prints their health periodically.
    Run {
        pipeline: PathBuf,
        /// Stop after this many seconds.
        #[arg(long = "for", value_name = "SECONDS")]
        duration: Option<f64>,
        /// Print status as JSON lines instead of a table.
        #[arg(long)]
        status_json: bool,
        /// Run as one of several workers sharing the [cases] database: each takes a fair
        /// share of the cameras by lease, and takes over those of a worker that dies.
        #[arg(long)]
        worker: bool,
        /// This worker's id (letters, digits, '.', '-', '_'); default HOSTNAME-PID.
        #[arg(long, value_name = "ID", requires = "worker")]
        worker_id: Option<String>,
        /// The most cameras this worker takes (0: only the web UI and the jobs).
        #[arg(long, value_name = "N", requires = "worker")]
        max_cameras: Option<u64>,
        /// Do not serve the web UI even if [web] is configured.
        #[arg(long)]
        no_web: bool,
    },
    /// Runs the pipeline over its cameras' recorded footage to the end; prints captures as
    /// JSON lines.
    Replay {
        pipeline: PathBuf,
        /// Play each file this many times back to back.
        #[arg(long = "loop", default_value_t = 1)]
        loops: u32,
        /// Also print suppressed candidates (duplicate, rate limit, outside hours).
        #[arg(long)]
        suppressed: bool,
        /// Store the captures in this database (sqlite://PATH or postgres://...), using the
        /// config's [cases] table; replaying again adds nothing.
        #[arg(long, value_name = "URL")]
        db: Option<String>,
    },
    /// Checks a pipeline config and reports every problem.
    Check { pipeline: PathBuf },
    /// Serves every H.264 file in a folder over RTSP, looping forever.
    ServeSamples {
        #[arg(long, default_value = "sample-videos")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1")]
        address: String,
        /// 0 picks a free port.
        #[arg(long, default_value_t = 8554)]
        port: u16,
        /// Require these credentials, as user:password.
        #[arg(long, value_name = "USER:PASSWORD")]
        auth: Option<String>,
        #[arg(long, value_enum, default_value_t = AuthMethod::Basic)]
        auth_method: AuthMethod,
        /// Also serve an audio-only stream under this name (to test "no video" handling).
        #[arg(long, value_name = "NAME")]
        audio_only_mount: Option<String>,
        /// Offer RTP over UDP only (TCP interleaving is refused with 461), as some cameras do.
        #[arg(long)]
        udp_only: bool,
    },
    /// Runs a detector over one image or video; prints detections as JSON lines.
    Detect {
        /// The model's manifest name (models/NAME.toml).
        #[arg(long, default_value = "ssd_mobilenet_v2_coco")]
        model: String,
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
        /// libonnxruntime.so to use (default: CITYWATCH_ORT_LIB, then .local/onnxruntime).
        #[arg(long)]
        ort_library: Option<PathBuf>,
        /// Intra-op threads for ONNX Runtime.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Print detections at or above this score (default: the manifest's min_score).
        #[arg(long)]
        min_score: Option<f32>,
        /// Run on every Nth frame only.
        #[arg(long, default_value_t = 1)]
        every: u64,
        file: PathBuf,
    },
    /// Manages web users (in the pipeline's case database).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Makes an API token for a user (printed once; only its hash is stored).
    Token {
        pipeline: PathBuf,
        user: String,
        #[arg(long, default_value = "integration")]
        label: String,
    },
    /// Writes the captures operators rejected as a COCO dataset (images + annotations.json,
    /// the rejection reason as an attribute) for model teams.
    ExportNegatives {
        pipeline: PathBuf,
        out: PathBuf,
        /// The database (default: the config's [cases] database).
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Leave vehicles' plates readable in the images (masked by default: plates are
        /// personal data).
        #[arg(long)]
        show_plates: bool,
    },
    /// Writes the confirmed and rejected captures as one COCO dataset for model teams: full
    /// frames decoded from the evidence clips, boxes, verdicts and reasons as attributes,
    /// train.json and val.json split by camera (docs/models.md).
    ExportDataset {
        pipeline: PathBuf,
        out: PathBuf,
        /// The database (default: the config's [cases] database).
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Leave vehicles' plates readable in the images (masked by default: plates are
        /// personal data).
        #[arg(long)]
        show_plates: bool,
    },
    /// Scores a pipeline on recorded footage against truth files (docs/eval.md); writes
    /// report.json, report.html and SVG plots.
    Eval {
        #[arg(long)]
        pipeline: PathBuf,
        /// A truth file (JSON, one per clip); repeat for more clips.
        #[arg(long, required = true)]
        truth: Vec<PathBuf>,
        #[arg(long, default_value = "eval-report")]
        out: PathBuf,
        /// A second pipeline to score on the same footage, side by side.
        #[arg(long, value_name = "PIPELINE")]
        compare: Option<PathBuf>,
        /// Use this model (a manifest name) instead of the pipeline's.
        #[arg(long)]
        model: Option<String>,
        /// Score the second variant with this model (without --compare: the same pipeline).
        #[arg(long, value_name = "MODEL")]
        compare_model: Option<String>,
        /// How far outside a truth event's span a capture may be confirmed (seconds).
        #[arg(long, default_value_t = 2.0)]
        tolerance: f64,
        /// Least IoU between a capture's box and a truth event's box.
        #[arg(long, default_value_t = 0.3)]
        iou: f64,
        /// Clips played at once (0: one per CPU core).
        #[arg(long, default_value_t = 0)]
        jobs: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Simulated review: the truth confirms or rejects each capture of a first pass, and
        /// a second pass (and a held-out one, per camera) plays with what was learned.
        #[arg(long)]
        review: bool,
    },
    /// Makes a clip with exact truth by pasting real object crops into real footage
    /// (a spec in TOML; docs/eval.md). Writes STEM.mp4 and STEM.json.
    Scenario {
        spec: PathBuf,
        /// Output folder (default: the spec's).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Checks a camera: connection, authentication, codec, resolution, frame rate.
    Probe {
        url: String,
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
    },
    /// The audit log's hash chain.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// A loopback city platform for tests and the demo: takes citywatch's webhooks at
    /// /intake, dispatches each case and reports it handled, by signed callback (or on
    /// /cases/{n} for polling with --no-callback). Prints "listening on ADDR".
    PlatformSim {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// citywatch's webhook secret ([cases.webhook] secret).
        #[arg(long)]
        webhook_secret: String,
        /// The callback secret ([cases.platform] secret).
        #[arg(long)]
        platform_secret: String,
        /// citywatch's callback URL, e.g. http://127.0.0.1:8080/platform/callback.
        #[arg(long, conflicts_with = "no_callback")]
        callback: Option<String>,
        /// Report only on the status URL, for citywatch's polling adapter.
        #[arg(long)]
        no_callback: bool,
        #[arg(long, default_value_t = 1.0)]
        dispatch_after_s: f64,
        #[arg(long, default_value_t = 2.0)]
        handle_after_s: f64,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Walks the audit log's hash chain: exit 0 when it holds, 1 when a row was edited or
    /// deleted (the first break is printed).
    Verify { pipeline: PathBuf },
}

#[derive(Subcommand)]
enum UserAction {
    /// Adds a user, or replaces an existing user's role and password. The password is read
    /// from standard input (first line); with --generate one is made and printed.
    Add {
        pipeline: PathBuf,
        name: String,
        #[arg(long, value_parser = ["viewer", "operator", "admin"], default_value = "operator")]
        role: String,
        #[arg(long)]
        generate: bool,
    },
}

/// Opens the case database of a pipeline config.
async fn config_store(pipeline: &std::path::Path) -> Result<citywatch::store::Store, String> {
    let config = PipelineConfig::load(pipeline).map_err(|e| e.to_string())?;
    let cases = config
        .cases
        .ok_or("the config has no [cases] section: users live in its database")?;
    citywatch::store::Store::connect(&cases.database)
        .await
        .map_err(|e| e.to_string())
}

/// `--worker-id` checked, or HOSTNAME-PID.
fn worker_options(
    id: Option<String>,
    max_cameras: Option<u64>,
) -> Result<citywatch::run::WorkerOptions, String> {
    let id = match id {
        Some(id) => id,
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "worker".into());
            format!("{host}-{}", std::process::id())
        }
    };
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !ok {
        return Err(format!(
            "--worker-id: must be 1-64 letters, digits, '.', '-' or '_' (not starting with '.'), got {id:?}"
        ));
    }
    Ok(citywatch::run::WorkerOptions { id, max_cameras })
}

fn unix_now() -> f64 {
    citywatch::core::to_unix(std::time::SystemTime::now())
}

/// Arms the fault points `CITYWATCH_FAULTS` names (soak tests only), loudly.
fn arm_faults() -> Result<(), Failure> {
    use citywatch::core::faults;
    let spec = std::env::var(faults::VAR).unwrap_or_default();
    for point in faults::arm(&spec).map_err(Failure::Refused)? {
        tracing::warn!(fault = %point, "a fault point is armed: this process fails on purpose");
    }
    Ok(())
}

/// The clock `run` goes by: the system's, or the time-lapse `CITYWATCH_CLOCK` describes
/// (soak tests only), loudly.
fn run_clock() -> Result<Arc<dyn citywatch::core::Clock>, Failure> {
    use citywatch::core::{TimeLapse, clock::TIME_LAPSE_VAR};
    match std::env::var(TIME_LAPSE_VAR) {
        Ok(spec) if !spec.trim().is_empty() => {
            let lapse =
                TimeLapse::parse(&spec, std::time::SystemTime::now()).map_err(Failure::Refused)?;
            tracing::warn!(
                rate = lapse.rate(),
                "the clock is a time-lapse ({TIME_LAPSE_VAR}): dwell, grace and limits run fast"
            );
            Ok(Arc::new(lapse))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

/// Logs to stderr at `default` unless CITYWATCH_LOG says otherwise.
fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("CITYWATCH_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Why a command stopped short, and so its exit status (the README lists them).
#[derive(Debug)]
enum Failure {
    /// Exit 2: nothing was started: a bad config (the error names the field), bad
    /// arguments, a wrong model file, an unreadable input.
    Refused(String),
    /// Exit 1: the command ran and failed (a stream, the database, a file), or what it
    /// checked is bad (a camera that does not answer).
    Failed(String),
    /// Exit 1: what it checked is bad, and its output already says why (a broken audit
    /// chain).
    Found,
}

impl Failure {
    /// The one place a failure is printed and becomes an exit status.
    fn exit(self) -> ExitCode {
        let (code, message) = match self {
            Failure::Refused(m) => (2, Some(m)),
            Failure::Failed(m) => (1, Some(m)),
            Failure::Found => (1, None),
        };
        if let Some(m) = message {
            eprintln!("error: {m}");
        }
        ExitCode::from(code)
    }
}

/// Sorts a command's errors into [`Failure`]s.
trait Sort<T> {
    /// An error before anything started: exit 2.
    fn refused(self) -> Result<T, Failure>;
    /// An error while running: exit 1.
    fn failed(self) -> Result<T, Failure>;
}

impl<T, E: std::fmt::Display> Sort<T> for Result<T, E> {
    fn refused(self) -> Result<T, Failure> {
        self.map_err(|e| Failure::Refused(format!("{e:#}")))
    }
    fn failed(self) -> Result<T, Failure> {
        self.map_err(|e| Failure::Failed(format!("{e:#}")))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What `run` checks of the model before it starts, without loading ONNX Runtime: its
/// manifest reads, and its file is there with the manifest's sha256. Says the model's name
/// and version.
fn check_model(c: &PipelineConfig) -> Result<String, citywatch::detect::ModelError> {
    let Some(d) = &c.detect else {
        return Ok("none ([detect] not set)".into());
    };
    let m = citywatch::detect::Manifest::load_named(&d.models_dir, &d.model)?;
    m.verify_file()?;
    Ok(format!("{} {}", m.name, m.version))
}

fn load(path: &std::path::Path) -> Result<PipelineConfig, Failure> {
    PipelineConfig::load(path).refused()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Evaluation prints a report (and a progress bar), not a running log.
    init_tracing(match cli.command {
        Command::Eval { .. } | Command::Scenario { .. } => "warn",
        _ => "info",
    });
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit(),
    }
}

/// Runs one command; every error comes back here as a [`Failure`].
fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Check { pipeline } => {
            let c = load(&pipeline)?;
            let model = check_model(&c).refused()?;
            println!(
                "{}: ok, {} cameras, model {model}",
                pipeline.display(),
                c.cameras.len()
            );
            // The zones the cameras will use: the config's, or one an admin drew on the
            // camera's picture (stored in the case database).
            let drawn = match &c.cases {
                Some(cases) => runtime()
                    .block_on(citywatch::store::Store::peek_zone_overrides(
                        &cases.database,
                    ))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            // Applied as `run` applies them (a drawn mask added, an unusable one skipped).
            let mut effective = c.clone();
            let applied: Vec<_> = drawn
                .iter()
                .filter(|d| citywatch::run::apply_zone_override(&mut effective, d))
                .collect();
            for cam in &effective.cameras {
                for z in &cam.zones {
                    let from = match applied
                        .iter()
                        .find(|d| d.camera == cam.id && d.zone == z.id)
                    {
                        Some(d) => format!(
                            "drawn by {} at {}",
                            d.set_by,
                            citywatch::model::package::format_time(d.set_at, 0)
                        ),
                        None => "config".to_string(),
                    };
                    let pts: Vec<String> = z
                        .polygon
                        .0
                        .iter()
                        .map(|p| format!("[{:.3}, {:.3}]", p[0], p[1]))
                        .collect();
                    println!(
                        "  {} zone {} ({:?}): [{}] ({from})",
                        cam.id,
                        z.id,
                        z.kind,
                        pts.join(", ")
                    );
                }
            }
            Ok(())
        }
        Command::Run {
            pipeline,
            duration,
            status_json,
            worker,
            worker_id,
            max_cameras,
            no_web,
        } => {
            let config = load(&pipeline)?;
            let worker = worker
                .then(|| worker_options(worker_id, max_cameras))
                .transpose()
                .refused()?;
            arm_faults()?;
            let clock = run_clock()?;
            runtime().block_on(async move {
                let shutdown = Shutdown::new();
                spawn_signal_handler(shutdown.clone());
                let opts = RunOptions {
                    duration: duration.map(Duration::from_secs_f64),
                    status_format: if status_json {
                        StatusFormat::Json
                    } else {
                        StatusFormat::Table
                    },
                    worker,
                    web: !no_web,
                };
                citywatch::run::run(config, clock, shutdown, opts)
                    .await
                    .failed()
            })
        }
        Command::Replay {
            pipeline,
            loops,
            suppressed,
            db,
        } => {
            let config = load(&pipeline)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let opts = citywatch::replay::ReplayOptions {
                loops,
                suppressed,
                database: db,
            };
            let done = runtime().block_on(citywatch::replay::replay(config, opts, &mut out));
            drop(out);
            let (captures, suppressed, frames) = done.failed()?;
            tracing::info!(captures, suppressed, frames, "replay finished");
            Ok(())
        }
        Command::ServeSamples {
            dir,
            address,
            port,
            auth,
            auth_method,
            audio_only_mount,
            udp_only,
        } => {
            let auth = auth
                .map(|a| {
                    a.split_once(':')
                        .map(|(u, p)| (u.to_string(), p.to_string()))
                        .ok_or("--auth must be USER:PASSWORD")
                })
                .transpose()
                .refused()?;
            let opts = ServeOptions {
                dir,
                address: address.clone(),
                port,
                auth,
                auth_method,
                audio_only_mount,
                udp_only,
            };
            let (server, port) = SampleServer::start(&opts).failed()?;
            for m in &server.mounts {
                println!("serving rtsp://{address}:{port}/{m}");
            }
            // Tests wait for this line: the server accepts connections from here on.
            println!("listening on {address}:{port}");
            server.run();
            Ok(())
        }
        Command::Detect {
            model,
            models_dir,
            ort_library,
            threads,
            min_score,
            every,
            file,
        } => {
            use citywatch::detect::{Manifest, OrtDetector};
            let detector = Manifest::load_named(&models_dir, &model)
                .and_then(|m| {
                    let lib = citywatch::detect::runtime::library_path(ort_library.as_deref());
                    OrtDetector::load(m, &lib, threads)
                })
                .refused()?;
            let detector = Arc::new(detector);
            let min_score = min_score.unwrap_or(detector.manifest().min_score);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let done = rt.block_on(citywatch::detect::file::detect_file(
                detector, &file, min_score, every, &mut out,
            ));
            drop(out);
            let n = done
                .map_err(|e| format!("{}: {e}", file.display()))
                .failed()?;
            tracing::info!(frames = n, "done");
            Ok(())
        }
        Command::Audit {
            action: AuditAction::Verify { pipeline },
        } => {
            let c = runtime()
                .block_on(async {
                    let store = config_store(&pipeline).await?;
                    store.verify_audit().await.map_err(|e| e.to_string())
                })
                .refused()?;
            match c.broken {
                None => {
                    println!(
                        "audit log: ok, {} chained rows ({} from before the chain)",
                        c.rows, c.unchained
                    );
                    Ok(())
                }
                Some((seq, why)) => {
                    println!("audit log: BROKEN at row {seq}: {why}");
                    Err(Failure::Found)
                }
            }
        }
        Command::PlatformSim {
            listen,
            webhook_secret,
            platform_secret,
            callback,
            no_callback,
            dispatch_after_s,
            handle_after_s,
        } => {
            if callback.is_none() && !no_callback {
                return Err(Failure::Refused("--callback URL or --no-callback".into()));
            }
            runtime().block_on(async move {
                let opts = citywatch::platform_sim::SimOptions {
                    listen,
                    webhook_secret,
                    platform_secret,
                    callback,
                    dispatch_after: Duration::from_secs_f64(dispatch_after_s.max(0.0)),
                    handle_after: Duration::from_secs_f64(handle_after_s.max(0.0)),
                };
                let addr = citywatch::platform_sim::start(opts).await.refused()?;
                println!("listening on {addr}");
                let shutdown = Shutdown::new();
                spawn_signal_handler(shutdown.clone());
                shutdown.triggered().await;
                Ok(())
            })
        }
        Command::User {
            action:
                UserAction::Add {
                    pipeline,
                    name,
                    role,
                    generate,
                },
        } => {
            use citywatch::store::users::{
                NAME_RULE, PASSWORD_RULE, Role, random_secret, valid_name, valid_password,
            };
            if !valid_name(&name) {
                return Err(Failure::Refused(format!("a user name is {NAME_RULE}")));
            }
            let password = if generate {
                random_secret()[..20].to_string()
            } else {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                line.trim_end_matches(['\r', '\n']).to_string()
            };
            if !valid_password(&password) {
                return Err(Failure::Refused(format!("a password has {PASSWORD_RULE}")));
            }
            let role = Role::parse(&role).expect("clap checked the role");
            runtime()
                .block_on(async {
                    let store = config_store(&pipeline).await?;
                    store
                        .upsert_user(&name, role, &password, unix_now())
                        .await
                        .map_err(|e| e.to_string())
                })
                .failed()?;
            if generate {
                println!("user {name} ({}) password: {password}", role.as_str());
            } else {
                println!("user {name} ({})", role.as_str());
            }
            Ok(())
        }
        Command::Token {
            pipeline,
            user,
            label,
        } => {
            let token = runtime()
                .block_on(async {
                    let store = config_store(&pipeline).await?;
                    store
                        .create_token(&user, &label, unix_now())
                        .await
                        .map_err(|e| e.to_string())
                })
                .failed()?;
            println!("{token}");
            Ok(())
        }
        Command::ExportNegatives {
            pipeline,
            out,
            db,
            show_plates,
        } => export_captures(
            &pipeline,
            &out,
            db,
            citywatch::eval::negatives::Dataset::Negatives,
            show_plates,
        ),
        Command::ExportDataset {
            pipeline,
            out,
            db,
            show_plates,
        } => export_captures(
            &pipeline,
            &out,
            db,
            citywatch::eval::negatives::Dataset::Reviewed,
            show_plates,
        ),
        Command::Eval {
            pipeline,
            truth,
            out,
            compare,
            model,
            compare_model,
            tolerance,
            iou,
            jobs,
            quiet,
            review,
        } => {
            let opts = citywatch::eval::EvalOptions {
                pipeline,
                truth,
                out,
                compare,
                model,
                compare_model,
                matching: citywatch::eval::metrics::MatchParams {
                    tolerance_s: tolerance,
                    min_iou: iou,
                },
                progress: !quiet,
                jobs,
                review,
            };
            // Eval checks its inputs (configs, truth files, models) before it runs any.
            let w = runtime().block_on(citywatch::eval::eval(opts)).refused()?;
            println!("{}", w.json.display());
            println!("{}", w.html.display());
            Ok(())
        }
        Command::Scenario { spec, out } => {
            let o = citywatch::eval::scenario::make(&spec, out.as_deref()).refused()?;
            println!("{}", serde_json::to_string(&o).expect("json"));
            Ok(())
        }
        Command::Probe { url, timeout } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let report = rt
                .block_on(citywatch::probe::probe(
                    &url,
                    Duration::from_secs_f64(timeout),
                ))
                .map_err(|e| format!("probe failed: {} ({e})", citywatch::core::redact_url(&url)))
                .failed()?;
            println!("{}", serde_json::to_string_pretty(&report).expect("json"));
            Ok(())
        }
    }
}

fn spawn_signal_handler(shutdown: Shutdown) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("signal received; shutting down");
        shutdown.trigger();
    });
}

/// `export-negatives` and `export-dataset`.
fn export_captures(
    pipeline: &std::path::Path,
    out: &std::path::Path,
    db: Option<String>,
    which: citywatch::eval::negatives::Dataset,
    show_plates: bool,
) -> Result<(), Failure> {
    let config = load(pipeline)?;
    let (Some(cases), Some(ev)) = (&config.cases, &config.evidence) else {
        return Err(Failure::Refused(
            "this export needs [cases] and [evidence] in the config".into(),
        ));
    };
    let url = db.unwrap_or_else(|| cases.database.clone());
    let report = runtime()
        .block_on(async {
            let store = citywatch::store::Store::connect(&url).await?;
            citywatch::eval::negatives::export_with(&store, &ev.root, out, which, show_plates).await
        })
        .failed()?;
    println!("{}", serde_json::to_string(&report).expect("json"));
    Ok(())
}
