//! Streaming removal of ANSI escape sequences from captured output.
//!
//! [`AnsiStripper`] removes escape sequences and keeps every other byte
//! unchanged, so invalid UTF-8, C0 controls and binary data survive. Input
//! may arrive in chunks of any size: the stripper stores only its parser
//! state, never buffered input, and a sequence split across two chunks is
//! removed as if it had arrived whole.
//!
//! # Rules
//!
//! Only the 7-bit ESC byte (0x1B) starts a sequence. The 8-bit C1 forms such
//! as 0x9B are not recognised, because in UTF-8 output those bytes are
//! continuation bytes. These sequences are removed:
//!
//! - CSI: `ESC [`, then bytes 0x20–0x3F (parameters and intermediates, in
//!   any order), then a final byte 0x40–0x7E.
//! - OSC: `ESC ]`, then a body ended by BEL (0x07) or ST (`ESC \`).
//! - DCS (`ESC P`), SOS (`ESC X`), PM (`ESC ^`) and APC (`ESC _`): a body
//!   ended by ST. BEL does not end these strings and is removed as part of
//!   the body, because terminals end only OSC with BEL (vte 0.15 does so).
//! - nF escapes such as charset selection: `ESC`, then intermediates
//!   0x20–0x2F, then a final byte 0x30–0x7E (`ESC ( B`, `ESC # 8`).
//! - Two-byte escapes: `ESC` and a final byte 0x30–0x7E not listed above
//!   (`ESC 7`, `ESC =`, `ESC c`, `ESC \`).
//!
//! A string body (OSC, DCS, SOS, PM, APC) contains every byte up to its
//! terminator, including C0 controls and bytes >= 0x80. It also ends at
//! CAN (0x18) or SUB (0x1A), which are removed, and at an ESC not followed
//! by `\`, which then starts a new sequence.
//!
//! Inside a CSI sequence or an escape:
//! - CAN and SUB end the sequence and are removed.
//! - ESC ends the sequence and starts a new one.
//! - Other C0 controls (LF, CR, TAB, NUL, ...) are copied to the output and
//!   the sequence goes on, because terminals execute them in place (vte
//!   0.15 does so).
//! - DEL (0x7F) and bytes >= 0x80 end the sequence. That byte is kept as
//!   text, and the sequence bytes before it are removed.
//!
//! Every byte 0x20–0x7E continues or ends a sequence, so a CSI sequence with
//! a parameter byte after an intermediate is removed up to its final byte.
//! A terminal ignores such a malformed sequence up to the same byte (vte
//! 0.15 does so).
//!
//! A sequence that grows past its bound ([`MAX_STRING_LEN`],
//! [`MAX_CSI_LEN`]) is abandoned. Its bytes up to the bound are removed, and
//! the stripper returns to text at the first byte past it. So a stray
//! `ESC ]` in binary output removes at most `MAX_STRING_LEN + 2` bytes. A
//! sequence still open when the stream ends is removed.
//!
//! The output never contains ESC, and it is never longer than the input.

use memchr::memchr;

/// Longest OSC/DCS/SOS/PM/APC string body kept pending before the sequence
/// is abandoned.
///
/// The body excludes the introducer (`ESC ]`, `ESC P`, ...) and the
/// terminator. A body of exactly this many bytes is still removed when its
/// terminator follows. Window titles, hyperlinks and status reports fit, but
/// OSC 52 clipboard payloads, sixel images (DCS) and kitty graphics (APC)
/// can exceed it, and then the part past the bound appears as text.
pub const MAX_STRING_LEN: usize = 4096;

/// Longest CSI parameter/intermediate run before the sequence is abandoned.
///
/// The run counts the bytes between `ESC [` and the final byte of a CSI
/// sequence, or between `ESC` and the final byte of an escape. C0 controls
/// copied out from inside the sequence count too, so a stream of controls
/// cannot hold a sequence open without bound. A run of exactly this many
/// bytes is still removed when its final byte follows. The value leaves
/// room above the longest sequence vte 0.15 parses in full: 32 parameters
/// of at most 5 digits (u16) with their separators take 191 bytes.
pub const MAX_CSI_LEN: usize = 256;

const ESC: u8 = 0x1B;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1A;

/// Parser position between two input bytes. Each `len` counts bytes toward
/// the bound of the sequence it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Plain text.
    #[default]
    Ground,
    /// After ESC and `len` C0 controls.
    Escape { len: usize },
    /// After ESC and `len` bytes that include at least one intermediate.
    EscapeIntermediate { len: usize },
    /// After `ESC [` and `len` parameter, intermediate or C0 bytes.
    Csi { len: usize },
    /// Inside a string body of `len` bytes. Only OSC (`bel_ends`) ends at BEL.
    String { len: usize, bel_ends: bool },
    /// After an ESC inside a string body, which is either the start of ST or
    /// the start of a new sequence.
    StringEscape,
}

/// Streaming ANSI escape remover that keeps its state between
/// [`strip_into`](Self::strip_into) calls.
///
/// The module documentation lists what is removed and what is kept.
///
/// ```
/// use outcap::ansi::AnsiStripper;
///
/// let mut stripper = AnsiStripper::new();
/// let mut out = Vec::new();
/// stripper.strip_into(b"\x1b[3", &mut out);
/// stripper.strip_into(b"1mred\x1b[0m\n", &mut out);
/// stripper.finish();
/// assert_eq!(out, b"red\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct AnsiStripper {
    state: State,
}

impl AnsiStripper {
    /// Creates a stripper positioned in plain text.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends to `out` every byte of `input` that is not part of an escape sequence.
    pub fn strip_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // The output is never longer than the input, so this is the only
        // reservation the call needs.
        out.reserve(input.len());

        let mut rest = input;
        while !rest.is_empty() {
            rest = match self.state {
                State::Ground => match memchr(ESC, rest) {
                    None => {
                        out.extend_from_slice(rest);
                        return;
                    }
                    Some(at) => {
                        out.extend_from_slice(&rest[..at]);
                        self.state = State::Escape { len: 0 };
                        &rest[at + 1..]
                    }
                },
                State::String { len, bel_ends } => self.skip_string_body(rest, len, bel_ends),
                _ => {
                    self.step(rest[0], out);
                    &rest[1..]
                }
            };
        }
    }

    /// Ends the stream: a sequence still open is dropped, and the stripper is ready for a new stream.
    pub fn finish(&mut self) {
        self.state = State::Ground;
    }

    /// True when the stripper is inside an unfinished escape sequence.
    #[must_use]
    pub fn in_sequence(&self) -> bool {
        self.state != State::Ground
    }

    /// Consumes string body bytes from `rest` up to the terminator or the
    /// bound and returns the input that follows.
    fn skip_string_body<'a>(&mut self, rest: &'a [u8], len: usize, bel_ends: bool) -> &'a [u8] {
        let budget = MAX_STRING_LEN - len;
        // A terminator may follow the last body byte the bound allows, so
        // the search covers one byte more than the budget.
        let window = &rest[..rest.len().min(budget + 1)];
        let terminator = window
            .iter()
            .position(|&byte| matches!(byte, ESC | CAN | SUB) || (bel_ends && byte == BEL));

        match terminator {
            Some(at) => {
                self.state = if rest[at] == ESC {
                    State::StringEscape
                } else {
                    State::Ground
                };
                &rest[at + 1..]
            }
            None if rest.len() <= budget => {
                self.state = State::String {
                    len: len + rest.len(),
                    bel_ends,
                };
                &[]
            }
            None => {
                // `rest[budget]` is the first body byte past the bound. It
                // is not ESC, so the text path copies it and what follows.
                self.state = State::Ground;
                &rest[budget..]
            }
        }
    }

    /// Advances the parser by one byte in any state except `Ground` and
    /// `String`, which `strip_into` handles a run at a time.
    fn step(&mut self, byte: u8, out: &mut Vec<u8>) {
        if self.state == State::StringEscape {
            if byte == b'\\' {
                self.state = State::Ground;
                return;
            }
            // The ESC that interrupted the string starts a new sequence,
            // and `byte` is its second byte.
            self.state = State::Escape { len: 0 };
        }

        match byte {
            ESC => self.state = State::Escape { len: 0 },
            CAN | SUB => self.state = State::Ground,
            0x00..=0x1F => {
                // Copied out whether or not the run is at its bound.
                out.push(byte);
                self.extend_run();
            }
            0x20..=0x7E => self.step_printable(byte, out),
            0x7F..=0xFF => {
                out.push(byte);
                self.state = State::Ground;
            }
        }
    }

    /// Handles a byte 0x20–0x7E inside an escape or a CSI sequence.
    fn step_printable(&mut self, byte: u8, out: &mut Vec<u8>) {
        match (self.state, byte) {
            (State::Escape { .. }, b'[') => self.state = State::Csi { len: 0 },
            (State::Escape { .. }, b']') => {
                self.state = State::String {
                    len: 0,
                    bel_ends: true,
                };
            }
            (State::Escape { .. }, b'P' | b'X' | b'^' | b'_') => {
                self.state = State::String {
                    len: 0,
                    bel_ends: false,
                };
            }
            (State::Escape { .. } | State::EscapeIntermediate { .. }, 0x20..=0x2F)
            | (State::Csi { .. }, 0x20..=0x3F) => {
                if !self.extend_run() {
                    out.push(byte);
                } else if let State::Escape { len } = self.state {
                    self.state = State::EscapeIntermediate { len };
                }
            }
            // A final byte: 0x30–0x7E after ESC or an intermediate, or
            // 0x40–0x7E in CSI, given the arms above.
            _ => self.state = State::Ground,
        }
    }

    /// Counts one more byte into the run of the current escape or CSI
    /// sequence. Returns false, with the sequence abandoned, when the run is
    /// already at [`MAX_CSI_LEN`].
    fn extend_run(&mut self) -> bool {
        let len = match &mut self.state {
            State::Escape { len } | State::EscapeIntermediate { len } | State::Csi { len } => len,
            State::Ground | State::String { .. } | State::StringEscape => {
                unreachable!("extend_run called outside an escape or CSI sequence")
            }
        };

        if *len < MAX_CSI_LEN {
            *len += 1;
            return true;
        }

        self.state = State::Ground;
        false
    }
}

/// One-shot: strip a whole input (new stripper, `strip_into`, `finish`).
#[must_use]
pub fn strip(input: &[u8]) -> Vec<u8> {
    let mut stripper = AnsiStripper::new();
    let mut out = Vec::with_capacity(input.len());
    stripper.strip_into(input, &mut out);
    stripper.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rows of (case name, input, expected output). Inputs are complete
    /// streams, so a sequence open at the end is removed.
    const CASES: &[(&str, &[u8], &[u8])] = &[
        // Bytes outside sequences pass through.
        ("empty", b"", b""),
        ("plain text", b"hello, world", b"hello, world"),
        ("tab cr lf", b"a\tb\r\nc\n", b"a\tb\r\nc\n"),
        ("nul", b"a\x00b", b"a\x00b"),
        ("bel outside sequence", b"ding\x07", b"ding\x07"),
        ("can sub outside sequence", b"a\x18b\x1ac", b"a\x18b\x1ac"),
        (
            "other c0",
            b"\x01\x02\x08\x0b\x0c\x0e\x1c\x1f",
            b"\x01\x02\x08\x0b\x0c\x0e\x1c\x1f",
        ),
        ("del", b"a\x7fb", b"a\x7fb"),
        (
            "utf-8",
            "héllo ✓ 日本".as_bytes(),
            "héllo ✓ 日本".as_bytes(),
        ),
        (
            "invalid utf-8",
            b"\xff\xfe\xc3(\x80\xed\xa0\x80",
            b"\xff\xfe\xc3(\x80\xed\xa0\x80",
        ),
        ("8-bit csi is text", b"\x9b31mX\x9b", b"\x9b31mX\x9b"),
        (
            "8-bit osc and st are text",
            b"\x9d0;t\x07\x9c",
            b"\x9d0;t\x07\x9c",
        ),
        // CSI.
        ("csi sgr", b"\x1b[31mred\x1b[0m", b"red"),
        ("csi no params", b"a\x1b[mb", b"ab"),
        ("csi truecolor", b"\x1b[38;2;255;0;10mX", b"X"),
        ("csi subparams", b"\x1b[4:3mX", b"X"),
        ("csi private", b"\x1b[?25l\x1b[?1049hX", b"X"),
        ("csi intermediate", b"\x1b[2 qX\x1b[1;2'z", b"X"),
        ("csi param after intermediate", b"\x1b[ 1mX", b"X"),
        ("csi erase line", b"\x1b[2K\r50%", b"\r50%"),
        ("csi final range ends", b"\x1b[1@\x1b[1~X", b"X"),
        ("csi lf inside", b"a\x1b[1\nmb", b"a\nb"),
        ("csi cr tab nul inside", b"\x1b[1\r\t\x002mX", b"\r\t\x00X"),
        ("csi bel inside", b"\x1b[1\x07mX", b"\x07X"),
        ("csi can", b"\x1b[31\x18mX", b"mX"),
        ("csi sub", b"\x1b[31\x1amX", b"mX"),
        ("csi esc restarts", b"\x1b[31\x1b[32mX", b"X"),
        ("csi high byte aborts", b"\x1b[31\xc3\xa9", b"\xc3\xa9"),
        ("csi del aborts", b"\x1b[31\x7fm", b"\x7fm"),
        ("csi open at end", b"abc\x1b[12;", b"abc"),
        // OSC.
        ("osc bel", b"\x1b]0;title\x07text", b"text"),
        (
            "osc st",
            b"\x1b]8;;http://x.invalid\x1b\\link\x1b]8;;\x1b\\",
            b"link",
        ),
        ("osc utf-8 body", b"\x1b]2;h\xc3\xa9 \xff\x07x", b"x"),
        ("osc c0 in body", b"\x1b]0;a\nb\tc\x00\x07x", b"x"),
        ("osc can", b"\x1b]0;t\x18x", b"x"),
        ("osc sub", b"\x1b]0;t\x1ax", b"x"),
        ("osc esc starts csi", b"\x1b]0;t\x1b[1mX", b"X"),
        ("osc esc starts two-byte", b"\x1b]0;t\x1bcX", b"X"),
        (
            "osc esc then high byte",
            b"\x1b]0;t\x1b\xc3\xa9",
            b"\xc3\xa9",
        ),
        ("osc esc esc st", b"\x1b]0;t\x1b\x1b\\X", b"X"),
        ("osc esc can", b"\x1b]0;t\x1b\x18X", b"X"),
        ("osc esc lf then st", b"\x1b]0;t\x1b\n\\X", b"\nX"),
        ("osc open at end", b"abc\x1b]0;ti", b"abc"),
        ("osc esc at end", b"abc\x1b]0;t\x1b", b"abc"),
        // DCS, SOS, PM, APC.
        ("dcs st", b"\x1bP1$r0m\x1b\\X", b"X"),
        ("dcs bel is body", b"\x1bPq#0\x07still\x1b\\X", b"X"),
        ("dcs can", b"\x1bPq\x18X", b"X"),
        ("sos st", b"\x1bXsos\x1b\\X", b"X"),
        ("pm st", b"\x1b^pm\x07\x1b\\X", b"X"),
        ("apc st", b"\x1b_Gi=1;AAAA\x1b\\X", b"X"),
        ("apc bel is body", b"\x1b_a\x07b\x1b\\X", b"X"),
        ("apc sub", b"\x1b_a\x1aX", b"X"),
        ("apc open at end", b"X\x1b_abc\x07", b"X"),
        // nF escapes.
        ("charset ascii", b"\x1b(BX", b"X"),
        ("charset line drawing", b"\x1b)0X", b"X"),
        ("decaln", b"\x1b#8X", b"X"),
        ("utf-8 mode", b"\x1b%GX", b"X"),
        ("two intermediates", b"\x1b$(CX", b"X"),
        ("s7c1t", b"\x1b FX", b"X"),
        ("nf final bracket", b"\x1b([X", b"X"),
        ("nf lf inside", b"\x1b(\nB", b"\n"),
        ("nf high byte aborts", b"\x1b(\xffB", b"\xffB"),
        ("nf del aborts", b"\x1b(\x7fB", b"\x7fB"),
        ("nf can", b"\x1b(\x18B", b"B"),
        ("nf open at end", b"x\x1b(", b"x"),
        // Two-byte escapes.
        ("decsc decrc", b"\x1b7X\x1b8", b"X"),
        ("keypad modes", b"\x1b=\x1b>X", b"X"),
        ("ris", b"\x1bcX", b"X"),
        ("reverse index", b"\x1bMX", b"X"),
        ("ind nel hts", b"\x1bD\x1bE\x1bHX", b"X"),
        ("single shifts", b"\x1bNa\x1bOb", b"ab"),
        ("lone st", b"\x1b\\X", b"X"),
        ("final tilde", b"\x1b~X", b"X"),
        ("final zero", b"\x1b0X", b"X"),
        ("esc lf then final", b"\x1b\n7X", b"\nX"),
        ("esc lf then csi", b"\x1b\n[1mX", b"\nX"),
        ("esc esc", b"\x1b\x1b[1mX", b"X"),
        ("esc can", b"\x1b\x18X", b"X"),
        ("esc sub", b"\x1b\x1aX", b"X"),
        ("esc del", b"\x1b\x7fX", b"\x7fX"),
        ("esc 8-bit csi", b"\x1b\x9b1m", b"\x9b1m"),
        ("esc open at end", b"abc\x1b", b"abc"),
    ];

    /// Feeds `input` to one stripper, cut at each offset in `cuts` (sorted).
    fn strip_in_chunks(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stripper = AnsiStripper::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts {
            stripper.strip_into(&input[start..cut], &mut out);
            start = cut;
        }
        stripper.strip_into(&input[start..], &mut out);
        stripper.finish();
        out
    }

    fn strip_byte_by_byte(input: &[u8]) -> Vec<u8> {
        let cuts: Vec<usize> = (1..input.len()).collect();
        strip_in_chunks(input, &cuts)
    }

    /// Byte-at-a-time model of the module rules. It works on the whole
    /// input with indices instead of a resumable state, so it shares no
    /// code with the streaming path it checks.
    fn reference_strip(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            if input[i] == ESC {
                i = reference_escape(input, i + 1, &mut out);
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
        out
    }

    /// Parses an escape whose ESC precedes `start` and returns the index
    /// where text resumes. Returning the index of a byte makes the caller
    /// keep it as text, or start a new sequence if it is ESC.
    fn reference_escape(input: &[u8], start: usize, out: &mut Vec<u8>) -> usize {
        let mut seen_intermediate = false;
        for (i, &byte) in input.iter().enumerate().skip(start) {
            if !seen_intermediate {
                match byte {
                    b'[' => return reference_csi(input, i + 1, out),
                    b']' => return reference_string(input, i + 1, true),
                    b'P' | b'X' | b'^' | b'_' => return reference_string(input, i + 1, false),
                    _ => {}
                }
            }
            match byte {
                ESC => return i,
                CAN | SUB => return i + 1,
                0x30..=0x7E => return i + 1,
                0x7F..=0xFF => return i,
                _ if i - start == MAX_CSI_LEN => return i,
                0x00..=0x1F => out.push(byte),
                _ => seen_intermediate = true,
            }
        }
        input.len()
    }

    fn reference_csi(input: &[u8], start: usize, out: &mut Vec<u8>) -> usize {
        for (i, &byte) in input.iter().enumerate().skip(start) {
            match byte {
                ESC => return i,
                CAN | SUB => return i + 1,
                0x40..=0x7E => return i + 1,
                0x7F..=0xFF => return i,
                _ if i - start == MAX_CSI_LEN => return i,
                0x00..=0x1F => out.push(byte),
                _ => {}
            }
        }
        input.len()
    }

    fn reference_string(input: &[u8], start: usize, bel_ends: bool) -> usize {
        for (i, &byte) in input.iter().enumerate().skip(start) {
            match byte {
                CAN | SUB => return i + 1,
                BEL if bel_ends => return i + 1,
                ESC if input.get(i + 1) == Some(&b'\\') => return i + 2,
                ESC => return i,
                _ if i - start == MAX_STRING_LEN => return i,
                _ => {}
            }
        }
        input.len()
    }

    #[test]
    fn table_one_shot() {
        for &(name, input, expected) in CASES {
            assert_eq!(strip(input), expected, "case {name:?}");
        }
    }

    #[test]
    fn table_byte_by_byte() {
        for &(name, input, expected) in CASES {
            assert_eq!(strip_byte_by_byte(input), expected, "case {name:?}");
        }
    }

    #[test]
    fn table_every_two_way_split() {
        for &(name, input, expected) in CASES {
            for cut in 0..=input.len() {
                let out = strip_in_chunks(input, &[cut]);
                assert_eq!(out, expected, "case {name:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn table_matches_reference() {
        for &(name, input, expected) in CASES {
            assert_eq!(reference_strip(input), expected, "case {name:?}");
        }
    }

    #[test]
    fn all_bytes_except_esc_pass() {
        let input: Vec<u8> = (0..=255u8).filter(|&byte| byte != ESC).collect();
        assert_eq!(strip(&input), input);
    }

    #[test]
    fn high_byte_aborts_every_state() {
        for byte in 0x80..=0xFFu8 {
            for prefix in [&b"\x1b"[..], b"\x1b(", b"\x1b[", b"\x1b[1;"] {
                let mut input = prefix.to_vec();
                input.extend_from_slice(&[byte, b'm']);
                assert_eq!(strip(&input), [byte, b'm'], "input {input:x?}");
            }
        }
    }

    #[test]
    fn two_bytes_per_state_match_reference() {
        // One prefix per parser state, so every transition from every state
        // is compared, with the byte after it as well.
        const PREFIXES: &[&[u8]] = &[
            b"",
            b"\x1b",
            b"\x1b\n",
            b"\x1b(",
            b"\x1b[",
            b"\x1b[1;",
            b"\x1b[ ",
            b"\x1b]0;t",
            b"\x1b]0;t\x1b",
            b"\x1bPq",
            b"\x1bPq\x1b",
            b"\x1b_a",
        ];
        for prefix in PREFIXES {
            for first in 0..=255u8 {
                for second in 0..=255u8 {
                    let mut input = prefix.to_vec();
                    input.extend_from_slice(&[first, second, b'Z']);
                    let expected = reference_strip(&input);
                    assert_eq!(strip(&input), expected, "input {input:x?}");
                    let cut = prefix.len() + 1;
                    assert_eq!(
                        strip_in_chunks(&input, &[cut]),
                        expected,
                        "input {input:x?}"
                    );
                }
            }
        }
    }

    fn string_with_body(introducer: &[u8], body_len: usize, terminator: &[u8]) -> Vec<u8> {
        let mut input = b"<".to_vec();
        input.extend_from_slice(introducer);
        input.extend(std::iter::repeat_n(b'a', body_len));
        input.extend_from_slice(terminator);
        input.extend_from_slice(b">");
        input
    }

    #[test]
    fn string_body_at_bound_removed() {
        for (introducer, terminator) in [
            (&b"\x1b]"[..], &b"\x07"[..]),
            (b"\x1b]", b"\x1b\\"),
            (b"\x1bP", b"\x1b\\"),
            (b"\x1b_", b"\x18"),
        ] {
            let input = string_with_body(introducer, MAX_STRING_LEN, terminator);
            assert_eq!(strip(&input), b"<>", "introducer {introducer:x?}");
            assert_eq!(
                strip_byte_by_byte(&input),
                b"<>",
                "introducer {introducer:x?}"
            );
        }
    }

    #[test]
    fn string_body_past_bound_kept() {
        let input = string_with_body(b"\x1b]", MAX_STRING_LEN + 1, b"\x07");
        assert_eq!(strip(&input), b"<a\x07>");

        let input = string_with_body(b"\x1bP", MAX_STRING_LEN + 1, b"\x1b\\");
        assert_eq!(strip(&input), b"<a>");

        let input = string_with_body(b"\x1b^", MAX_STRING_LEN + 3, b"");
        assert_eq!(strip(&input), b"<aaa>");
    }

    #[test]
    fn string_bound_across_chunks() {
        let input = string_with_body(b"\x1b]", MAX_STRING_LEN + 5, b"\x07");
        let expected = b"<aaaaa\x07>";
        for cut in [
            2,
            3,
            100,
            MAX_STRING_LEN + 2,
            MAX_STRING_LEN + 3,
            MAX_STRING_LEN + 4,
        ] {
            assert_eq!(strip_in_chunks(&input, &[cut]), expected, "cut at {cut}");
        }
        assert_eq!(strip_byte_by_byte(&input), expected);
    }

    fn csi_with_run(run: &[u8], final_byte: u8) -> Vec<u8> {
        let mut input = b"<\x1b[".to_vec();
        input.extend_from_slice(run);
        input.push(final_byte);
        input.push(b'>');
        input
    }

    #[test]
    fn csi_run_at_bound_removed() {
        let input = csi_with_run(&[b'1'; MAX_CSI_LEN], b'm');
        assert_eq!(strip(&input), b"<>");
        assert_eq!(strip_byte_by_byte(&input), b"<>");
    }

    #[test]
    fn csi_run_past_bound_kept() {
        let mut run = vec![b';'; MAX_CSI_LEN];
        run.push(b'9');
        let input = csi_with_run(&run, b'm');
        assert_eq!(strip(&input), b"<9m>");
        assert_eq!(strip_byte_by_byte(&input), b"<9m>");
    }

    #[test]
    fn csi_c0_counts_toward_bound() {
        let mut run = vec![b'\n'; MAX_CSI_LEN];
        run.push(b'\n');
        let input = csi_with_run(&run, b'm');
        let mut expected = b"<".to_vec();
        expected.extend_from_slice(&run);
        expected.extend_from_slice(b"m>");
        assert_eq!(strip(&input), expected);
    }

    #[test]
    fn escape_intermediates_at_bound_removed() {
        let mut input = b"<\x1b".to_vec();
        input.extend(std::iter::repeat_n(b' ', MAX_CSI_LEN));
        input.extend_from_slice(b"B>");
        assert_eq!(strip(&input), b"<>");
    }

    #[test]
    fn escape_intermediates_past_bound_kept() {
        let mut input = b"<\x1b".to_vec();
        input.extend(std::iter::repeat_n(b'(', MAX_CSI_LEN + 1));
        input.extend_from_slice(b"B>");
        assert_eq!(strip(&input), b"<(B>");
    }

    #[test]
    fn csi_space_past_bound_kept() {
        let mut run = vec![b'1'; MAX_CSI_LEN];
        run.push(b' ');
        let input = csi_with_run(&run, b'q');
        assert_eq!(strip(&input), b"< q>");
    }

    #[test]
    fn escape_c0_then_intermediate_past_bound() {
        let mut input = b"<\x1b".to_vec();
        input.extend(std::iter::repeat_n(b'\n', MAX_CSI_LEN));
        input.extend_from_slice(b" B>");
        let mut expected = b"<".to_vec();
        expected.extend(std::iter::repeat_n(b'\n', MAX_CSI_LEN));
        expected.extend_from_slice(b" B>");
        assert_eq!(strip(&input), expected);
    }

    #[test]
    fn escape_c0_past_bound_kept() {
        let mut input = b"<\x1b".to_vec();
        input.extend(std::iter::repeat_n(b'\r', MAX_CSI_LEN + 1));
        input.extend_from_slice(b"c>");
        let mut expected = b"<".to_vec();
        expected.extend(std::iter::repeat_n(b'\r', MAX_CSI_LEN + 1));
        expected.extend_from_slice(b"c>");
        assert_eq!(strip(&input), expected);
    }

    #[test]
    fn in_sequence_tracks_state() {
        let mut stripper = AnsiStripper::new();
        let mut out = Vec::new();
        assert!(!stripper.in_sequence());

        stripper.strip_into(b"a\x1b", &mut out);
        assert!(stripper.in_sequence());
        stripper.strip_into(b"[3", &mut out);
        assert!(stripper.in_sequence());
        stripper.strip_into(b"1m", &mut out);
        assert!(!stripper.in_sequence());

        stripper.strip_into(b"\x1b]0;t\x1b", &mut out);
        assert!(stripper.in_sequence());
        stripper.strip_into(b"\\b", &mut out);
        assert!(!stripper.in_sequence());
        assert_eq!(out, b"ab");
    }

    #[test]
    fn finish_drops_open_sequence() {
        let mut stripper = AnsiStripper::new();
        let mut out = Vec::new();
        stripper.strip_into(b"a\x1b]0;never ended", &mut out);
        stripper.finish();
        assert!(!stripper.in_sequence());

        stripper.strip_into(b"b\x07c", &mut out);
        assert_eq!(out, b"ab\x07c");
    }

    #[test]
    fn strip_into_appends() {
        let mut out = b"kept:".to_vec();
        let mut stripper = AnsiStripper::default();
        stripper.strip_into(b"\x1b[1mx", &mut out);
        assert_eq!(out, b"kept:x");
    }

    /// Generates a byte drawn mostly from those that start, continue or end sequences.
    fn biased_byte() -> impl Strategy<Value = u8> {
        const SPECIAL: &[u8] = &[
            ESC, b'[', b']', b'\\', BEL, CAN, SUB, b'P', b'X', b'^', b'_', b'(', b' ', b';', b'1',
            b'?', b'm', b'B', b'\n', b'\r', 0x00, 0x7F, 0x9B, 0x9C, 0xC3,
        ];
        prop_oneof![
            2 => any::<u8>(),
            3 => prop::sample::select(SPECIAL),
        ]
    }

    /// Generates input from single bytes, sequence introducers and long runs of
    /// one byte, so that some cases cross MAX_STRING_LEN and MAX_CSI_LEN.
    fn biased_input() -> impl Strategy<Value = Vec<u8>> {
        const INTRODUCERS: &[&[u8]] =
            &[b"\x1b[", b"\x1b]", b"\x1bP", b"\x1b_", b"\x1b(", b"\x1b\\"];
        let piece = prop_oneof![
            20 => biased_byte().prop_map(|byte| vec![byte]),
            4 => prop::sample::select(INTRODUCERS).prop_map(<[u8]>::to_vec),
            1 => (biased_byte(), 1..MAX_STRING_LEN + 3).prop_map(|(byte, n)| vec![byte; n]),
        ];
        prop::collection::vec(piece, 0..48).prop_map(|pieces| pieces.concat())
    }

    fn sorted_cuts(len: usize, picks: &[prop::sample::Index]) -> Vec<usize> {
        let mut cuts: Vec<usize> = picks.iter().map(|pick| pick.index(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }

    proptest! {
        #[test]
        fn any_split_matches_strip(
            input in biased_input(),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let cuts = sorted_cuts(input.len(), &picks);
            prop_assert_eq!(strip_in_chunks(&input, &cuts), strip(&input));
        }

        #[test]
        fn any_split_matches_strip_arbitrary_bytes(
            input in prop::collection::vec(any::<u8>(), 0..512),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let cuts = sorted_cuts(input.len(), &picks);
            prop_assert_eq!(strip_in_chunks(&input, &cuts), strip(&input));
        }

        #[test]
        fn byte_by_byte_matches_strip(input in biased_input()) {
            prop_assert_eq!(strip_byte_by_byte(&input), strip(&input));
        }

        #[test]
        fn strip_matches_reference(input in biased_input()) {
            prop_assert_eq!(strip(&input), reference_strip(&input));
        }

        #[test]
        fn input_without_esc_unchanged(
            input in prop::collection::vec(biased_byte().prop_filter("not ESC", |&byte| byte != ESC), 0..512),
        ) {
            prop_assert_eq!(strip(&input), input);
        }

        #[test]
        fn output_not_longer_than_input(input in biased_input()) {
            prop_assert!(strip(&input).len() <= input.len());
        }

        #[test]
        fn output_contains_no_esc(input in biased_input()) {
            prop_assert!(!strip(&input).contains(&ESC));
        }
    }
}
