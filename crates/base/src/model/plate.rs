//! Chinese licence plates (车牌号): which texts are plates, how a plate is shown to someone
//! who may not see it in full, and how reads taken over a vehicle's dwell are voted into one.
//!
//! Validation is strict on purpose: a read that is not a well-formed plate is "unreadable",
//! never a guess. The formats (GA 36-2018):
//! - ordinary: province abbreviation + authority letter + 5 of letters and digits
//!   (京A12345);
//! - suffixed: province + letter + 4 of letters and digits + 警, 学, 挂, 领, 试, 超, 港 or 澳
//!   (京A1234警);
//! - new energy: province + letter + 6: small cars `D`/`F`, a letter or digit, then 4 digits
//!   (粤BD12345); large vehicles 5 digits then `D`/`F` (粤B12345D).
//!
//! Serial letters never include I or O (they read as 1 and 0), so a reader's `O` or `I` in a
//! serial position is the digit; that is a property of the format, not a guess.

use std::collections::HashMap;

/// The 31 provincial abbreviations that start a plate.
pub const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// Suffixes that end a 7-character plate in place of its last serial character.
pub const SUFFIXES: &str = "警学挂领试超港澳";

/// What kind of plate a valid text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateKind {
    Ordinary,
    Suffixed,
    NewEnergy,
}

/// A letter allowed as an issuing authority or in a serial: A–Z without I and O.
fn serial_letter(c: char) -> bool {
    c.is_ascii_uppercase() && c != 'I' && c != 'O'
}

fn serial_char(c: char) -> bool {
    c.is_ascii_digit() || serial_letter(c)
}

/// The text as a plate is written in the store: separators (`·`, `•`, `.`, `-`, spaces)
/// removed, upper case, and `O`/`I` in serial positions read as `0`/`1`.
pub fn normalise(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '·' | '•' | '.' | '-' | '_' | '・' | '．' | '。') || c.is_whitespace()
        {
            continue;
        }
        out.push(c.to_ascii_uppercase());
    }
    out.chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (i, 'O') if i >= 2 => '0',
            (i, 'I') if i >= 2 => '1',
            _ => c,
        })
        .collect()
}

/// The plate's kind when `text` (already [`normalise`]d) is a valid plate.
pub fn validate(text: &str) -> Option<PlateKind> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 7 || chars.len() > 8 {
        return None;
    }
    if !PROVINCES.contains(chars[0]) || !serial_letter(chars[1]) {
        return None;
    }
    let serial = &chars[2..];
    match serial.len() {
        5 => {
            if serial.iter().all(|&c| serial_char(c)) {
                Some(PlateKind::Ordinary)
            } else if serial[..4].iter().all(|&c| serial_char(c)) && SUFFIXES.contains(serial[4]) {
                Some(PlateKind::Suffixed)
            } else {
                None
            }
        }
        6 => {
            let digits = |s: &[char]| s.iter().all(|c| c.is_ascii_digit());
            let small =
                matches!(serial[0], 'D' | 'F') && serial_char(serial[1]) && digits(&serial[2..]);
            let large = digits(&serial[..5]) && matches!(serial[5], 'D' | 'F');
            (small || large).then_some(PlateKind::NewEnergy)
        }
        _ => None,
    }
}

/// A plate as someone without the right to see plates is shown it: the province and
/// authority letter, the serial's last character, the rest as `*` (京A****5).
pub fn mask(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i < 2 || i + 1 == chars.len() {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// One read of a plate: the reader's text (normalised) and its confidence 0..1, or none
/// when nothing valid was read.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateRead {
    pub text: Option<String>,
    pub confidence: f32,
}

/// The plate a vehicle's reads voted for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VotedPlate {
    pub text: String,
    /// The winner's share of all reads' weight (an unreadable read weighs 0.5), times its
    /// reads' mean confidence: 0..1.
    pub confidence: f32,
    /// Reads that agreed on it.
    pub agree: u32,
    /// Reads taken in all, readable or not.
    pub reads: u32,
    /// Where the plate is in the frame (x1, y1, x2, y2, normalised), from the best read: the
    /// region exports mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f32; 4]>,
}

/// Covers `bbox` (normalised, grown by a fifth of its size each way) of a packed RGB picture
/// with its mean colour: a plate no one can read, in a picture that still looks whole.
pub fn mask_region(rgb: &mut [u8], width: u32, height: u32, bbox: [f32; 4]) {
    let (bw, bh) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    let px = |v: f32, size: u32| ((v * size as f32).round().max(0.0) as u32).min(size);
    let (x0, x1) = (px(bbox[0] - bw * 0.2, width), px(bbox[2] + bw * 0.2, width));
    let (y0, y1) = (
        px(bbox[1] - bh * 0.2, height),
        px(bbox[3] + bh * 0.2, height),
    );
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let at = |x: u32, y: u32| (y as usize * width as usize + x as usize) * 3;
    let mut sum = [0u64; 3];
    for y in y0..y1 {
        for x in x0..x1 {
            for c in 0..3 {
                sum[c] += rgb[at(x, y) + c] as u64;
            }
        }
    }
    let n = ((x1 - x0) * (y1 - y0)) as u64;
    let mean = sum.map(|s| (s / n) as u8);
    for y in y0..y1 {
        for x in x0..x1 {
            rgb[at(x, y)..at(x, y) + 3].copy_from_slice(&mean);
        }
    }
}

/// Reads of one vehicle's plate over its dwell, voted by confidence.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlateVote {
    /// Sum of confidence and count, per text.
    #[serde(default)]
    weight: HashMap<String, (f32, u32)>,
    #[serde(default)]
    unreadable: u32,
}

/// A standing vehicle's plate as its episode keeps it (and persists it across restarts):
/// the reads so far and when the last was taken.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlateTrack {
    pub vote: PlateVote,
    pub last_read: Option<f64>,
    /// The plate once `min_agree` reads first agreed on it: the vehicle's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<String>,
    /// The latest valid texts, newest last (at most [`RECENT_READS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<String>,
    /// What the last read found (None: unreadable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// Valid texts a track remembers in order, to tell a swap from a misread.
pub const RECENT_READS: usize = 6;

/// What a new read meant for the vehicle's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlateNews {
    Nothing,
    /// The reads agreed on a plate for the first time.
    Settled(String),
    /// The last `min_agree` reads all agree on another plate than the settled one: another
    /// vehicle stands where this one stood.
    Swapped {
        was: String,
        now: String,
    },
}

impl PlateTrack {
    /// Whether the last read found the settled plate: the vehicle is as it was.
    pub fn confirmed(&self) -> bool {
        self.settled.is_some() && self.last == self.settled
    }

    /// Whether a vehicle that has stood `dwell` seconds is due a read at `t`.
    pub fn due(&self, t: f64, dwell: f64, after_s: f64, every_s: f64) -> bool {
        dwell >= after_s && self.last_read.is_none_or(|l| t - l >= every_s)
    }

    pub fn add(&mut self, t: f64, read: &PlateRead) {
        self.vote.add(read);
        self.last_read = Some(t);
        self.last = read.text.clone();
        if let Some(text) = &read.text {
            self.recent.push(text.clone());
            if self.recent.len() > RECENT_READS {
                self.recent.remove(0);
            }
        }
    }

    /// Adds a read and says what it means for the vehicle's identity.
    pub fn add_and_judge(&mut self, t: f64, read: &PlateRead, min_agree: u32) -> PlateNews {
        self.add(t, read);
        let n = min_agree.max(1) as usize;
        match &self.settled {
            None => match self.vote.winner(min_agree) {
                Some(w) => {
                    self.settled = Some(w.text.clone());
                    PlateNews::Settled(w.text)
                }
                None => PlateNews::Nothing,
            },
            Some(was) => {
                let tail = &self.recent[self.recent.len().saturating_sub(n)..];
                let now = tail.last();
                match now {
                    Some(now)
                        if tail.len() == n
                            && now != was
                            && tail.iter().all(|x| x == now)
                            && read.text.as_ref() == Some(now) =>
                    {
                        PlateNews::Swapped {
                            was: was.clone(),
                            now: now.clone(),
                        }
                    }
                    _ => PlateNews::Nothing,
                }
            }
        }
    }

    /// A new vehicle's track started from the reads that showed it (a swap).
    pub fn started_from(t: f64, texts: &[String], confidence: f32) -> Self {
        let mut p = Self::default();
        for text in texts {
            p.add(
                t,
                &PlateRead {
                    text: Some(text.clone()),
                    confidence,
                },
            );
        }
        p.settled = texts.last().cloned();
        p
    }
}

/// A vehicle with a settled plate that went out of sight: if the same plate is read at the
/// same place within [`PLATE_MEMORY_S`], it is the same vehicle and its dwell goes on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GonePlate {
    pub plate: String,
    pub anchor: [f32; 4],
    pub first_seen: f64,
    pub closed_at: f64,
    /// Rules it had already been captured for.
    #[serde(default)]
    pub resolved: Vec<super::RuleKind>,
}

/// How long a gone vehicle's plate is remembered: a night and a day.
pub const PLATE_MEMORY_S: f64 = 36.0 * 3600.0;
/// Gone plates remembered per camera at most (oldest forgotten first).
pub const PLATE_MEMORY_MAX: usize = 64;

/// Weight of a read that found no valid plate: it lowers the confidence of whatever wins,
/// without outvoting a clear read.
const UNREADABLE_WEIGHT: f32 = 0.5;

impl PlateVote {
    pub fn add(&mut self, read: &PlateRead) {
        match &read.text {
            Some(t) => {
                let e = self.weight.entry(t.clone()).or_insert((0.0, 0));
                e.0 += read.confidence.clamp(0.0, 1.0);
                e.1 += 1;
            }
            None => self.unreadable += 1,
        }
    }

    pub fn reads(&self) -> u32 {
        self.unreadable + self.weight.values().map(|v| v.1).sum::<u32>()
    }

    /// The winning plate: the most total confidence (ties: the most reads, then the text,
    /// so the result never depends on hash order). None while nothing valid has been read,
    /// or when `min_agree` reads do not agree on the winner.
    pub fn winner(&self, min_agree: u32) -> Option<VotedPlate> {
        let (text, &(sum, n)) = self.weight.iter().max_by(|a, b| {
            a.1.0
                .total_cmp(&b.1.0)
                .then(a.1.1.cmp(&b.1.1))
                .then(b.0.cmp(a.0))
        })?;
        if n < min_agree.max(1) {
            return None;
        }
        let total: f32 = self.weight.values().map(|v| v.0).sum::<f32>()
            + UNREADABLE_WEIGHT * self.unreadable as f32;
        let share = if total > 0.0 { sum / total } else { 0.0 };
        Some(VotedPlate {
            text: text.clone(),
            confidence: (share * (sum / n as f32)).clamp(0.0, 1.0),
            agree: n,
            reads: self.reads(),
            bbox: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_formats_are_recognised_and_named() {
        for (t, k) in [
            ("京A12345", PlateKind::Ordinary),
            ("沪B8K9Z2", PlateKind::Ordinary),
            ("粤BD12345", PlateKind::NewEnergy),
            ("粤BFA1234", PlateKind::NewEnergy),
            ("苏E12345D", PlateKind::NewEnergy),
            ("京A1234警", PlateKind::Suffixed),
            ("浙A1234学", PlateKind::Suffixed),
            ("鲁B1234挂", PlateKind::Suffixed),
        ] {
            assert_eq!(validate(t), Some(k), "{t}");
        }
    }

    #[test]
    fn invalid_texts_are_unreadable_not_guessed() {
        for t in [
            "",
            "京A1234",    // too short
            "京A1234567", // too long
            "X京A12345",  // no province first
            "京112345",   // authority must be a letter
            "京I12345",   // I is never an authority letter
            "京A12O45",   // O in a serial (normalise turns it into 0 first)
            "京A123警5",  // suffix not last
            "粤BD1234A",  // small new energy ends in 4 digits
            "粤B1234AD",  // large new energy: 5 digits then D/F
            "粤BX12345",  // 6-serial that is neither new-energy form
            "京A12#45",
        ] {
            assert_eq!(validate(t), None, "{t}");
        }
    }

    #[test]
    fn normalise_strips_separators_and_reads_o_and_i_as_digits_in_serials() {
        assert_eq!(normalise("京A·12345"), "京A12345");
        assert_eq!(normalise(" 京a-1O3I5 "), "京A10315");
        assert_eq!(validate(&normalise("京A·1O3I5")), Some(PlateKind::Ordinary));
        // The authority letter keeps its O: the result is not valid, not a guess.
        assert_eq!(validate(&normalise("京O12345")), None);
    }

    #[test]
    fn masking_keeps_province_authority_and_last_character() {
        assert_eq!(mask("京A12345"), "京A****5");
        assert_eq!(mask("粤BD12345"), "粤B*****5");
    }

    fn read(t: Option<&str>, c: f32) -> PlateRead {
        PlateRead {
            text: t.map(str::to_string),
            confidence: c,
        }
    }

    #[test]
    fn the_vote_picks_the_most_confident_text_and_reports_agreement() {
        let mut v = PlateVote::default();
        assert_eq!(v.winner(1), None);
        v.add(&read(Some("京A12345"), 0.9));
        v.add(&read(Some("京A12346"), 0.95));
        v.add(&read(Some("京A12345"), 0.8));
        v.add(&read(None, 0.0));
        let w = v.winner(2).expect("two agree");
        assert_eq!(w.text, "京A12345");
        assert_eq!((w.agree, w.reads), (2, 4));
        // 1.7 of 1.7 + 0.95 + 0.5, times a mean of 0.85.
        assert!(
            (w.confidence - 1.7 / 3.15 * 0.85).abs() < 1e-5,
            "{}",
            w.confidence
        );
        assert_eq!(v.winner(3), None, "three do not agree");
    }

    #[test]
    fn unreadable_reads_lower_confidence_but_never_invent_a_plate() {
        let mut v = PlateVote::default();
        for _ in 0..5 {
            v.add(&read(None, 0.0));
        }
        assert_eq!(v.winner(1), None);
        v.add(&read(Some("京A12345"), 1.0));
        let w = v.winner(1).unwrap();
        assert!(w.confidence < 0.3, "{}", w.confidence);
    }

    #[test]
    fn a_track_is_due_after_the_dwell_and_then_every_period() {
        let mut p = PlateTrack::default();
        assert!(!p.due(100.0, 59.0, 60.0, 120.0));
        assert!(p.due(100.0, 60.0, 60.0, 120.0));
        p.add(100.0, &read(None, 0.0));
        assert!(!p.due(219.0, 179.0, 60.0, 120.0));
        assert!(p.due(220.0, 180.0, 60.0, 120.0));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<PlateTrack>(&json).unwrap(), p);
    }

    #[test]
    fn a_track_settles_then_tells_a_swap_from_a_misread() {
        let mut p = PlateTrack::default();
        let r = |t: &str| read(Some(t), 0.9);
        assert_eq!(p.add_and_judge(0.0, &r("京A12345"), 2), PlateNews::Nothing);
        assert_eq!(
            p.add_and_judge(1.0, &r("京A12345"), 2),
            PlateNews::Settled("京A12345".into())
        );
        // One misread is not a swap; two in a row of the same other plate are.
        assert_eq!(p.add_and_judge(2.0, &r("京A12346"), 2), PlateNews::Nothing);
        assert_eq!(p.add_and_judge(3.0, &r("京A12345"), 2), PlateNews::Nothing);
        assert_eq!(
            p.add_and_judge(4.0, &read(None, 0.0), 2),
            PlateNews::Nothing
        );
        assert_eq!(p.add_and_judge(5.0, &r("粤B99999"), 2), PlateNews::Nothing);
        assert_eq!(
            p.add_and_judge(6.0, &r("粤B99999"), 2),
            PlateNews::Swapped {
                was: "京A12345".into(),
                now: "粤B99999".into()
            }
        );
        let q = PlateTrack::started_from(6.0, &p.recent[p.recent.len() - 2..], 0.9);
        assert_eq!(q.settled.as_deref(), Some("粤B99999"));
        assert_eq!(q.vote.winner(2).unwrap().text, "粤B99999");
    }

    #[test]
    fn masking_a_region_leaves_one_flat_colour_and_the_rest_untouched() {
        let (w, h) = (20u32, 10u32);
        let mut rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let before = rgb.clone();
        mask_region(&mut rgb, w, h, [0.5, 0.5, 0.7, 0.7]);
        // Grown by a fifth: x 9.2..14.8 → 9..15, y 4.6..7.4 → 5..7.
        let px = |r: &[u8], x: usize, y: usize| r[(y * w as usize + x) * 3..][..3].to_vec();
        let inside = px(&rgb, 9, 5);
        for (x, y) in [(9, 5), (14, 6), (12, 6)] {
            assert_eq!(px(&rgb, x, y), inside);
        }
        for (x, y) in [(8, 5), (15, 6), (12, 4), (12, 7), (0, 0)] {
            assert_eq!(px(&rgb, x, y), px(&before, x, y), "({x}, {y})");
        }
    }

    #[test]
    fn ties_are_broken_the_same_way_every_time() {
        let mut a = PlateVote::default();
        a.add(&read(Some("京A12345"), 0.5));
        a.add(&read(Some("京A12346"), 0.5));
        let mut b = PlateVote::default();
        b.add(&read(Some("京A12346"), 0.5));
        b.add(&read(Some("京A12345"), 0.5));
        assert_eq!(a.winner(1).unwrap().text, b.winner(1).unwrap().text);
    }
}
