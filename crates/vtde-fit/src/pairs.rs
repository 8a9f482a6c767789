//! Reading image–caption pairs: a CSV file with the columns `image,caption` (a header
//! row naming them, in any order, other columns ignored; RFC 4180 quoting), a JSONL
//! file with the keys `image` and `caption`, or a folder of images each with a `.txt`
//! caption beside it (`cat.jpg` + `cat.txt`). Image paths in a file are relative to the
//! file's folder (absolute ones are kept). Errors name the file and the row.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Image extensions a pairs folder is searched for.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp"];

/// One image–caption pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The image file.
    pub image: PathBuf,
    /// Its caption.
    pub caption: String,
    /// Where the pair was read (`pairs.csv:12`, `pairs.jsonl:3`, `dir/cat.txt`), for
    /// messages.
    pub origin: String,
}

/// Reads the pairs at `path`: a folder, a `.csv` file or a `.jsonl` (or `.json`) file.
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>> {
    let pairs = if path.is_dir() {
        read_folder(path)?
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => read_csv(path, &text, base)?,
            Some("jsonl" | "json" | "ndjson") => read_jsonl(path, &text, base)?,
            _ => {
                return Err(Error::invalid(
                    path,
                    "pairs must be a .csv file (image,caption), a .jsonl file ({\"image\": ..., \"caption\": ...}) or a folder of images with .txt captions",
                ))
            }
        }
    };
    if pairs.is_empty() {
        return Err(Error::invalid(path, "holds no pairs"));
    }
    Ok(pairs)
}

fn resolve(base: &Path, image: &str) -> PathBuf {
    let image = Path::new(image);
    if image.is_absolute() {
        image.to_path_buf()
    } else {
        base.join(image)
    }
}

fn check_caption(path: &Path, origin: &str, caption: &str) -> Result<()> {
    if caption.trim().is_empty() {
        return Err(Error::invalid(
            path,
            format!("{origin}: the caption is empty"),
        ));
    }
    Ok(())
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas,
/// newlines and doubled quotes), each with the line it starts on.
fn csv_records(path: &Path, text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let (mut line, mut record_line) = (1usize, 1usize);
    let mut chars = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .chars()
        .peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                if !(fields.len() == 1 && fields[0].is_empty()) {
                    records.push((record_line, std::mem::take(&mut fields)));
                }
                fields.clear();
                line += 1;
                record_line = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err(Error::invalid(
            path,
            format!("line {record_line}: a quoted field is not closed"),
        ));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((record_line, fields));
    }
    Ok(records)
}

fn read_csv(path: &Path, text: &str, base: &Path) -> Result<Vec<Pair>> {
    let records = csv_records(path, text)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Ok(Vec::new());
    };
    let column = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::invalid(
                path,
                format!("line 1: the header has no \"{name}\" column (it needs image,caption)"),
            )
        })
    };
    let (image_col, caption_col) = (column("image")?, column("caption")?);
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let mut pairs = Vec::with_capacity(rows.len());
    for (line, fields) in rows {
        let origin = format!("{file}:{line}");
        let (Some(image), Some(caption)) = (fields.get(image_col), fields.get(caption_col)) else {
            return Err(Error::invalid(
                path,
                format!(
                    "line {line}: {} fields; the header has {}",
                    fields.len(),
                    header.len()
                ),
            ));
        };
        if image.trim().is_empty() {
            return Err(Error::invalid(
                path,
                format!("line {line}: the image path is empty"),
            ));
        }
        check_caption(path, &format!("line {line}"), caption)?;
        pairs.push(Pair {
            image: resolve(base, image.trim()),
            caption: caption.clone(),
            origin,
        });
    }
    Ok(pairs)
}

fn read_jsonl(path: &Path, text: &str, base: &Path) -> Result<Vec<Pair>> {
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let mut pairs = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| Error::invalid(path, format!("line {line}: not a JSON object: {e}")))?;
        let field = |key: &str| {
            value.get(key).and_then(serde_json::Value::as_str).ok_or_else(|| {
                Error::invalid(path, format!("line {line}: no string \"{key}\" (each line needs \"image\" and \"caption\")"))
            })
        };
        let (image, caption) = (field("image")?, field("caption")?);
        if image.trim().is_empty() {
            return Err(Error::invalid(
                path,
                format!("line {line}: the image path is empty"),
            ));
        }
        check_caption(path, &format!("line {line}"), caption)?;
        pairs.push(Pair {
            image: resolve(base, image),
            caption: caption.to_owned(),
            origin: format!("{file}:{line}"),
        });
    }
    Ok(pairs)
}

fn read_folder(dir: &Path) -> Result<Vec<Pair>> {
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            images.push(path);
        }
    }
    images.sort();
    let mut pairs = Vec::with_capacity(images.len());
    for image in images {
        let caption_path = image.with_extension("txt");
        let caption = std::fs::read_to_string(&caption_path).map_err(|e| {
            Error::invalid(
                &image,
                format!("no caption {} beside it: {e}", caption_path.display()),
            )
        })?;
        let caption = caption.trim().to_owned();
        check_caption(&caption_path, "caption file", &caption)?;
        pairs.push(Pair {
            image,
            caption,
            origin: caption_path.display().to_string(),
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_quotes_any_column_order_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.csv");
        std::fs::write(&path, "caption,extra,image\r\n\"a red, round \"\"circle\"\"\",x,img/a.png\r\n\"two\nlines\",y,/abs/b.png\r\n").unwrap();
        let pairs = read_pairs(&path).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].caption, "a red, round \"circle\"");
        assert_eq!(pairs[0].image, dir.path().join("img/a.png"));
        assert_eq!(pairs[0].origin, "pairs.csv:2");
        assert_eq!(pairs[1].caption, "two\nlines");
        assert_eq!(pairs[1].image, PathBuf::from("/abs/b.png"));
    }

    #[test]
    fn bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("p.csv");
        std::fs::write(&csv, "image,caption\na.png,ok\nb.png\n").unwrap();
        let err = read_pairs(&csv).unwrap_err().to_string();
        assert!(err.contains("p.csv") && err.contains("line 3"), "{err}");
        std::fs::write(&csv, "img,caption\na.png,x\n").unwrap();
        assert!(read_pairs(&csv)
            .unwrap_err()
            .to_string()
            .contains("no \"image\" column"));
        std::fs::write(&csv, "image,caption\na.png,\"open\n").unwrap();
        assert!(read_pairs(&csv)
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        let jsonl = dir.path().join("p.jsonl");
        std::fs::write(
            &jsonl,
            "{\"image\": \"a.png\", \"caption\": \"x\"}\n\n{\"image\": \"b.png\"}\n",
        )
        .unwrap();
        let err = read_pairs(&jsonl).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("caption"), "{err}");
        std::fs::write(&jsonl, "{\"image\": \"a.png\", \"caption\": \"  \"}\n").unwrap();
        assert!(read_pairs(&jsonl)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn folder_pairs_images_with_their_txt() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), b"").unwrap();
        std::fs::write(dir.path().join("b.txt"), "a blue square\n").unwrap();
        std::fs::write(dir.path().join("a.JPG"), b"").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a cat").unwrap();
        std::fs::write(dir.path().join("notes.md"), "x").unwrap();
        let pairs = read_pairs(dir.path()).unwrap();
        assert_eq!(
            pairs.iter().map(|p| p.caption.as_str()).collect::<Vec<_>>(),
            ["a cat", "a blue square"]
        );
        std::fs::write(dir.path().join("c.png"), b"").unwrap();
        assert!(read_pairs(dir.path())
            .unwrap_err()
            .to_string()
            .contains("c.txt"));
    }
}
