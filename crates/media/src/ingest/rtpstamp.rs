//! A stand-in for rtpbin's jitter buffer on RTSP over TCP.
//!
//! TCP delivers RTP packets in order and without loss, so a jitter buffer has nothing to
//! reorder or wait for; what it still does is hand every packet to a thread of its own
//! (about 350 a second for a 1080p camera) and give the packets their timestamps. This
//! element does only the second, on the reading thread: a packet's PTS is the running time
//! its stream started at plus its RTP time since then. A jump of the RTP clock (a camera that
//! restarted it, a server that looped its file) starts the count again from the arrival time,
//! never behind the last PTS given.
//!
//! rtpbin sets `latency` on whatever jitter buffer it is handed, so the element has that
//! property and ignores it. UDP keeps the real jitter buffer.

use parking_lot::Mutex;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

/// How far the RTP clock may jump between two packets before the count starts again.
const RESYNC_NS: u64 = 5_000_000_000;

/// Turns RTP timestamps into PTS (nanoseconds of running time). Pure, so it is tested alone.
#[derive(Debug, Default)]
pub struct Stamper {
    clock_rate: u32,
    /// The last packet's timestamp extended to 64 bits.
    last_ext: Option<u64>,
    /// (extended RTP time, PTS) the count runs from.
    base: Option<(u64, u64)>,
    last_pts: Option<u64>,
}

impl Stamper {
    pub fn set_clock_rate(&mut self, rate: u32) {
        if rate != self.clock_rate {
            self.clock_rate = rate;
            self.base = None;
        }
    }

    /// The PTS of a packet with RTP time `ts` that arrived at running time `now` (ns).
    /// `None` until the clock rate is known and the element has a running time.
    pub fn stamp(&mut self, ts: u32, now: Option<u64>) -> Option<u64> {
        if self.clock_rate == 0 {
            return None;
        }
        let ext = match self.last_ext {
            None => u64::from(ts) + (1 << 32),
            Some(last) => {
                // The 64-bit value nearest the last one with these low 32 bits.
                let candidate = (last & !0xffff_ffff) | u64::from(ts);
                [
                    candidate.wrapping_sub(1 << 32),
                    candidate,
                    candidate + (1 << 32),
                ]
                .into_iter()
                .min_by_key(|c| c.abs_diff(last))
                .unwrap_or(candidate)
            }
        };
        let jumped = self
            .last_ext
            .is_some_and(|last| self.to_ns(ext.abs_diff(last)) > RESYNC_NS);
        self.last_ext = Some(ext);
        if self.base.is_none() || jumped || self.base.is_some_and(|(b, _)| ext < b) {
            let now = now?;
            // Never behind what was already given.
            let start = self.last_pts.map_or(now, |p| now.max(p + 1));
            self.base = Some((ext, start));
        }
        let (base_ext, base_pts) = self.base?;
        let pts = base_pts + self.to_ns(ext - base_ext);
        self.last_pts = Some(self.last_pts.map_or(pts, |p| p.max(pts)));
        Some(pts)
    }

    fn to_ns(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(self.clock_rate.max(1))) as u64
    }
}

/// The RTP timestamp of a packet, if it is RTP version 2.
fn rtp_timestamp(data: &[u8]) -> Option<u32> {
    (data.len() >= 12 && data[0] >> 6 == 2)
        .then(|| u32::from_be_bytes([data[4], data[5], data[6], data[7]]))
}

mod imp {
    use super::*;
    use gstreamer::subclass::prelude::*;
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct RtpStamp {
        sinkpad: gst::Pad,
        srcpad: gst::Pad,
        stamper: Mutex<Stamper>,
        latency: AtomicU32,
    }

    /// Caps, allocation and scheduling queries pass straight through, both ways.
    const PROXY: gst::PadFlags = gst::PadFlags::PROXY_CAPS
        .union(gst::PadFlags::PROXY_ALLOCATION)
        .union(gst::PadFlags::PROXY_SCHEDULING);

    impl RtpStamp {
        fn chain(&self, mut buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let ts = {
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                rtp_timestamp(&map)
            };
            if let Some(ts) = ts {
                let now = self.obj().current_running_time().map(|t| t.nseconds());
                let pts = self.stamper.lock().stamp(ts, now);
                if let Some(pts) = pts {
                    let b = buffer.make_mut();
                    b.set_pts(gst::ClockTime::from_nseconds(pts));
                    b.set_dts(gst::ClockTime::NONE);
                }
            }
            self.srcpad.push(buffer)
        }

        fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            match event.view() {
                gst::EventView::Caps(c) => {
                    if let Some(rate) = c
                        .caps()
                        .structure(0)
                        .and_then(|s| s.get::<i32>("clock-rate").ok())
                        .filter(|r| *r > 0)
                    {
                        self.stamper.lock().set_clock_rate(rate as u32);
                    }
                }
                gst::EventView::FlushStop(_) => {
                    let mut stamper = self.stamper.lock();
                    let clock_rate = stamper.clock_rate;
                    *stamper = Stamper {
                        clock_rate,
                        ..Stamper::default()
                    };
                }
                _ => {}
            }
            gst::Pad::event_default(pad, Some(&*self.obj()), event)
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RtpStamp {
        const NAME: &'static str = "CitywatchRtpStamp";
        type Type = super::RtpStamp;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            let sinkpad = gst::Pad::builder_from_template(
                &klass.pad_template("sink").expect("sink template"),
            )
            .chain_function(|_pad, parent, buffer| {
                RtpStamp::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |s| s.chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                RtpStamp::catch_panic_pad_function(parent, || false, |s| s.sink_event(pad, event))
            })
            .flags(PROXY)
            .build();
            let srcpad =
                gst::Pad::builder_from_template(&klass.pad_template("src").expect("src template"))
                    .flags(PROXY)
                    .build();
            Self {
                sinkpad,
                srcpad,
                stamper: Mutex::new(Stamper::default()),
                latency: AtomicU32::new(0),
            }
        }
    }

    impl ObjectImpl for RtpStamp {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecUInt::builder("latency")
                        .nick("Latency")
                        .blurb("Accepted for rtpbin and ignored: TCP needs no waiting")
                        .build(),
                ]
            });
            PROPS.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            if pspec.name() == "latency" {
                self.latency
                    .store(value.get::<u32>().unwrap_or(0), Ordering::Relaxed);
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            match pspec.name() {
                "latency" => self.latency.load(Ordering::Relaxed).to_value(),
                _ => glib::Value::from_type(pspec.value_type()),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.add_pad(&self.sinkpad).expect("add sink pad");
            obj.add_pad(&self.srcpad).expect("add src pad");
        }
    }

    impl GstObjectImpl for RtpStamp {}

    impl ElementImpl for RtpStamp {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "RTP timestamper",
                    "Filter/Network/RTP",
                    "Gives RTP packets received in order their PTS from the RTP clock",
                    "citywatch",
                )
            });
            Some(&*META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::new_empty_simple("application/x-rtp");
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("sink template"),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("src template"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }
}

glib::wrapper! {
    /// See the module documentation.
    pub struct RtpStamp(ObjectSubclass<imp::RtpStamp>) @extends gst::Element, gst::Object;
}

impl RtpStamp {
    pub fn new() -> Self {
        glib::Object::new()
    }
}

impl Default for RtpStamp {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn pts_follow_the_rtp_clock_from_the_first_arrival() {
        let mut s = Stamper::default();
        assert_eq!(s.stamp(1000, Some(5 * S)), None, "no clock rate yet");
        s.set_clock_rate(90_000);
        assert_eq!(s.stamp(1000, Some(5 * S)), Some(5 * S));
        // 40 ms later in RTP time, whatever the arrival time says.
        assert_eq!(s.stamp(1000 + 3600, Some(7 * S)), Some(5 * S + 40_000_000));
        // The same RTP time (packets of one frame) gets the same PTS.
        assert_eq!(s.stamp(1000 + 3600, Some(8 * S)), Some(5 * S + 40_000_000));
    }

    #[test]
    fn the_32_bit_rtp_clock_wraps_without_a_jump() {
        let mut s = Stamper::default();
        s.set_clock_rate(90_000);
        let t0 = u32::MAX - 1799; // 20 ms before the wrap
        assert_eq!(s.stamp(t0, Some(S)), Some(S));
        assert_eq!(
            s.stamp(t0.wrapping_add(3600), Some(S)),
            Some(S + 40_000_000)
        );
    }

    #[test]
    fn a_jump_of_the_rtp_clock_restarts_from_the_arrival_never_going_back() {
        let mut s = Stamper::default();
        s.set_clock_rate(90_000);
        assert_eq!(s.stamp(900_000, Some(10 * S)), Some(10 * S));
        assert_eq!(s.stamp(900_000 + 90_000, Some(11 * S)), Some(11 * S));
        // The camera restarted its clock far back: the count starts again at the arrival.
        assert_eq!(s.stamp(5, Some(12 * S)), Some(12 * S));
        assert_eq!(s.stamp(5 + 90_000, Some(13 * S)), Some(13 * S));
        // A jump forward whose arrival is behind the last PTS continues just after it.
        let last = 13 * S;
        assert_eq!(s.stamp(5 + 90_000 * 1000, Some(12 * S)), Some(last + 1));
    }
}
