//! A reference ANSI stripper written from the rules in the module
//! documentation of `src/ansi.rs`, one byte per step.
//!
//! It shares no code with `outcap::ansi`, which skips text and string bodies
//! a run at a time with `memchr`. Only the two length bounds are imported,
//! because they are part of the documented rules.

use outcap::ansi::{MAX_CSI_LEN, MAX_STRING_LEN};

const ESC: u8 = 0x1B;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1A;

/// Parser state between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelState {
    Text,
    /// After ESC. `run` counts the bytes since ESC toward `MAX_CSI_LEN`, and
    /// `intermediate` is set once a byte 0x20–0x2F arrived, after which
    /// `[`, `]`, `P`, `X`, `^` and `_` are final bytes.
    Escape {
        run: usize,
        intermediate: bool,
    },
    /// After `ESC [`, with `run` bytes since the `[`.
    Csi {
        run: usize,
    },
    /// In an OSC (`osc`) or DCS/SOS/PM/APC body of `body` bytes.
    Body {
        body: usize,
        osc: bool,
    },
    /// After an ESC inside a string body.
    BodyEscape,
}

/// The reference stripper. Feed it with [`ModelStripper::push`].
#[derive(Debug, Clone)]
pub struct ModelStripper {
    pub state: ModelState,
}

impl Default for ModelStripper {
    fn default() -> Self {
        Self {
            state: ModelState::Text,
        }
    }
}

impl ModelStripper {
    /// Processes one input byte and appends what it produces to `out`.
    pub fn push(&mut self, byte: u8, out: &mut Vec<u8>) {
        match self.state {
            ModelState::Text => self.text(byte, out),
            ModelState::Escape { run, intermediate } => self.escape(run, intermediate, byte, out),
            ModelState::Csi { run } => self.csi(run, byte, out),
            ModelState::Body { body, osc } => self.body(body, osc, byte, out),
            ModelState::BodyEscape => {
                if byte == b'\\' {
                    // ST ends the string.
                    self.state = ModelState::Text;
                } else {
                    // The ESC ends the string and starts a new sequence, whose
                    // second byte is `byte`.
                    self.escape(0, false, byte, out);
                }
            }
        }
    }

    fn text(&mut self, byte: u8, out: &mut Vec<u8>) {
        if byte == ESC {
            self.state = ModelState::Escape {
                run: 0,
                intermediate: false,
            };
        } else {
            out.push(byte);
        }
    }

    /// Handles a byte that any escape or CSI sequence treats the same way.
    /// Returns false when the byte is one the caller must decide on: a byte
    /// 0x20–0x7E.
    fn common(&mut self, run: usize, byte: u8, out: &mut Vec<u8>) -> bool {
        match byte {
            ESC => {
                self.state = ModelState::Escape {
                    run: 0,
                    intermediate: false,
                };
            }
            CAN | SUB => self.state = ModelState::Text,
            0x00..=0x1F => {
                // Executed in place: copied out, and counted toward the bound.
                out.push(byte);
                if run == MAX_CSI_LEN {
                    self.state = ModelState::Text;
                } else {
                    self.bump_run();
                }
            }
            0x7F..=0xFF => {
                out.push(byte);
                self.state = ModelState::Text;
            }
            0x20..=0x7E => return false,
        }
        true
    }

    fn bump_run(&mut self) {
        match &mut self.state {
            ModelState::Escape { run, .. } | ModelState::Csi { run } => *run += 1,
            other => unreachable!("bump_run in state {other:?}"),
        }
    }

    fn escape(&mut self, run: usize, intermediate: bool, byte: u8, out: &mut Vec<u8>) {
        self.state = ModelState::Escape { run, intermediate };
        if self.common(run, byte, out) {
            return;
        }

        if !intermediate {
            match byte {
                b'[' => {
                    self.state = ModelState::Csi { run: 0 };
                    return;
                }
                b']' => {
                    self.state = ModelState::Body { body: 0, osc: true };
                    return;
                }
                b'P' | b'X' | b'^' | b'_' => {
                    self.state = ModelState::Body {
                        body: 0,
                        osc: false,
                    };
                    return;
                }
                _ => {}
            }
        }

        if (0x20..=0x2F).contains(&byte) {
            if run == MAX_CSI_LEN {
                // Past the bound: the sequence is abandoned and this byte is text.
                out.push(byte);
                self.state = ModelState::Text;
            } else {
                self.state = ModelState::Escape {
                    run: run + 1,
                    intermediate: true,
                };
            }
        } else {
            // A final byte 0x30–0x7E.
            self.state = ModelState::Text;
        }
    }

    fn csi(&mut self, run: usize, byte: u8, out: &mut Vec<u8>) {
        self.state = ModelState::Csi { run };
        if self.common(run, byte, out) {
            return;
        }

        if (0x20..=0x3F).contains(&byte) {
            if run == MAX_CSI_LEN {
                out.push(byte);
                self.state = ModelState::Text;
            } else {
                self.state = ModelState::Csi { run: run + 1 };
            }
        } else {
            // A final byte 0x40–0x7E.
            self.state = ModelState::Text;
        }
    }

    fn body(&mut self, body: usize, osc: bool, byte: u8, out: &mut Vec<u8>) {
        match byte {
            CAN | SUB => self.state = ModelState::Text,
            BEL if osc => self.state = ModelState::Text,
            ESC => self.state = ModelState::BodyEscape,
            _ if body == MAX_STRING_LEN => {
                // Past the bound: the string is abandoned, and this byte is
                // parsed as text.
                self.state = ModelState::Text;
                self.text(byte, out);
            }
            _ => {
                self.state = ModelState::Body {
                    body: body + 1,
                    osc,
                }
            }
        }
    }

    /// True while a sequence is open.
    pub fn in_sequence(&self) -> bool {
        self.state != ModelState::Text
    }
}

/// Strips a whole input with the reference stripper. A sequence still open
/// at the end is dropped.
pub fn model_strip(input: &[u8]) -> Vec<u8> {
    let mut stripper = ModelStripper::default();
    let mut out = Vec::with_capacity(input.len());
    for &byte in input {
        stripper.push(byte, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_examples_from_rules() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"plain\ttext\r\n", b"plain\ttext\r\n"),
            (b"\x1b[31mred\x1b[0m", b"red"),
            (b"\x1b]0;title\x07x", b"x"),
            (b"\x1b]8;;u\x1b\\link", b"link"),
            (b"\x1bPq\x07body\x1b\\x", b"x"),
            (b"\x1b(Bx\x1b#8y", b"xy"),
            (b"\x1b7x", b"x"),
            (b"\x1b[1\nmx", b"\nx"),
            (b"\x1b[31\x18mx", b"mx"),
            (b"\x1b[31\xc3\xa9", b"\xc3\xa9"),
            (b"\x1b]0;t\x1b[1mX", b"X"),
            (b"\x1b( [x", b"x"),
            (b"abc\x1b]0;open", b"abc"),
            (b"\x9b31m", b"\x9b31m"),
        ];
        for &(input, expected) in cases {
            assert_eq!(model_strip(input), expected, "input {input:x?}");
        }
    }

    #[test]
    fn model_string_bound() {
        let mut input = b"<\x1b]".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_STRING_LEN));
        input.extend_from_slice(b"\x07>");
        assert_eq!(model_strip(&input), b"<>");

        let mut input = b"<\x1bP".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_STRING_LEN + 2));
        input.extend_from_slice(b"\x07>");
        assert_eq!(model_strip(&input), b"<aa\x07>");
    }

    #[test]
    fn model_csi_bound() {
        let mut input = b"<\x1b[".to_vec();
        input.extend(std::iter::repeat_n(b'1', MAX_CSI_LEN));
        input.extend_from_slice(b"m>");
        assert_eq!(model_strip(&input), b"<>");

        let mut input = b"<\x1b[".to_vec();
        input.extend(std::iter::repeat_n(b'1', MAX_CSI_LEN + 1));
        input.extend_from_slice(b"m>");
        assert_eq!(model_strip(&input), b"<1m>");
    }
}
