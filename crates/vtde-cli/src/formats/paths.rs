//! How paths are written in outputs, losslessly.
//!
//! File names on Unix are bytes, and not every byte string is UTF-8; outputs are UTF-8
//! text (CSV, JSON). A path is written:
//!
//! - as it is, when it is valid UTF-8 and holds no backslash (`\`): almost every path;
//! - otherwise *escaped*: each byte that is not part of valid UTF-8 as `\xNN` (two
//!   lowercase hex digits), each backslash as `\\`, everything else as it is.
//!
//! So a written path holds a backslash exactly when it is escaped, and the written form
//! is one to one: two different paths are never written alike (`\xff.png` and
//! `\xfe.png` stay apart), and [`decode`] gives the raw path back. `--resume` and
//! `vtde merge` compare and order paths by this form decoded, that is by the raw bytes.
//! In Python: `os.fsencode(s)` when `"\\" not in s`, else
//! `re.sub(rb"\\(\\|x([0-9a-f]{2}))", lambda m: bytes.fromhex(m[2].decode()) if m[2] else b"\\", s.encode())`.

use std::path::{Path, PathBuf};

/// The written form of a path (see the module documentation).
pub fn encode(path: &Path) -> String {
    encode_bytes(path.as_os_str().as_encoded_bytes())
}

fn encode_bytes(bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.contains('\\') {
            return text.to_owned();
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The raw bytes of a written path: `None` when `text` is not a form that [`encode`]
/// writes (a stray backslash, a bad escape).
pub fn decode_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.contains('\\') {
        return Some(text.as_bytes().to_vec());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4)?;
                if !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The raw path of a written path; a text that is not a written form is taken as it is.
pub fn decode(text: &str) -> PathBuf {
    match decode_bytes(text) {
        Some(bytes) => path_from_bytes(bytes),
        None => PathBuf::from(text),
    }
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(bytes).into()
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    // Elsewhere paths vtde reads are Unicode; anything else is kept as text.
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_paths_without_backslashes_are_written_as_they_are() {
        for p in ["photos/a.png", "c gray, \"quoted\".png", "é/日本.jpg", ""] {
            assert_eq!(encode_bytes(p.as_bytes()), p);
            assert_eq!(decode_bytes(p).expect("decodes"), p.as_bytes());
        }
    }

    #[test]
    fn invalid_bytes_and_backslashes_are_escaped_one_to_one() {
        // Expected forms by the definition in the module documentation.
        let cases: [(&[u8], &str); 6] = [
            (b"\xff.png", "\\xff.png"),
            (b"\xfe.png", "\\xfe.png"),
            (b"a\\b.png", "a\\\\b.png"),
            (b"\\xff.png", "\\\\xff.png"),
            (b"d/\xc3(\xe9.png", "d/\\xc3(\\xe9.png"),
            (b"\xc3\xa9\xff", "\u{e9}\\xff"),
        ];
        for (raw, written) in cases {
            assert_eq!(encode_bytes(raw), written, "{raw:?}");
            assert_eq!(decode_bytes(written).expect("decodes"), raw, "{written}");
        }
        // No two of them are written alike.
        let mut forms: Vec<String> = cases.iter().map(|(r, _)| encode_bytes(r)).collect();
        forms.sort();
        forms.dedup();
        assert_eq!(forms.len(), cases.len());
    }

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            let raw = [b'a', b, b'\\', b, b'z'];
            let written = encode_bytes(&raw);
            assert_eq!(decode_bytes(&written).expect("decodes"), raw, "{written}");
        }
    }

    #[test]
    fn texts_that_are_not_written_forms_are_refused() {
        for bad in ["a\\b", "\\x4", "\\xzz", "\\xFF", "end\\"] {
            assert_eq!(decode_bytes(bad), None, "{bad}");
        }
    }
}
