//! Typed ingest errors, always with the camera and its redacted URL.

use std::fmt;

/// What went wrong, in terms that decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestErrorKind {
    /// The camera or platform rejected the credentials (RTSP 401).
    Unauthorized,
    /// No such stream on the server (RTSP 404).
    NotFound,
    /// Could not connect, or the connection broke.
    Unreachable,
    /// The server refused the RTP transport asked for (RTSP 461 Unsupported transport):
    /// the next try asks for the other one.
    TransportRefused,
    /// The stream or file has no video track.
    NoVideo,
    /// The recorded file does not exist.
    FileMissing,
    /// The data could not be demuxed or decoded (a corrupt file, an unknown codec).
    Corrupt,
    /// No frame arrived within the watchdog timeout.
    Watchdog,
    /// A live stream ended (a killed TCP server shows up as end-of-stream).
    EndOfStream,
    /// The GStreamer pipeline could not be built or started.
    Pipeline,
}

impl IngestErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestErrorKind::Unauthorized => "unauthorized",
            IngestErrorKind::NotFound => "not found",
            IngestErrorKind::Unreachable => "unreachable",
            IngestErrorKind::TransportRefused => "transport refused",
            IngestErrorKind::NoVideo => "no video",
            IngestErrorKind::FileMissing => "file missing",
            IngestErrorKind::Corrupt => "corrupt or unsupported stream",
            IngestErrorKind::Watchdog => "watchdog",
            IngestErrorKind::EndOfStream => "end of stream",
            IngestErrorKind::Pipeline => "pipeline",
        }
    }

    /// Faults that a quick retry will not fix; the camera is marked failed.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            IngestErrorKind::Unauthorized
                | IngestErrorKind::NotFound
                | IngestErrorKind::NoVideo
                | IngestErrorKind::FileMissing
                | IngestErrorKind::Corrupt
        )
    }
}

/// An ingest failure of one camera. Its text never contains credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub struct IngestError {
    pub camera: String,
    /// Redacted.
    pub url: String,
    pub kind: IngestErrorKind,
    pub detail: String,
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "camera {} ({}): {}: {}",
            self.camera,
            self.url,
            self.kind.as_str(),
            self.detail
        )
    }
}
