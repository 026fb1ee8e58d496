//! Integration tests against real parts: the `serve-samples` RTSP server on loopback, real
//! GStreamer decoding of the shipped footage, and the `citywatch` binary itself.

mod browser;
mod cli;
mod common;
mod detect;
mod docs;
mod eval;
mod evidence;
mod ingest;
mod layering;
mod learning;
mod lifecycle;
mod patrol;
mod plate;
mod probe;
mod replay;
mod rules;
mod shed;
mod soak;
mod store;
mod web;
mod workers;
