//! Drawn shapes with captions, the world of the demo model (`tools/train_demo.py`,
//! `models/README.md`), generated in Rust so that tests can make fresh data: one filled
//! shape (circle, square, triangle, star, cross) in one of six jittered colours on a
//! white, black or gray background, at a random position and size, rotated by up to
//! 15°, on a canvas of 80–200 px. Five colour × shape combinations ([`HELD_OUT`]) are
//! the ones the demo never saw in training.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

/// The shapes.
pub const SHAPES: [&str; 5] = ["circle", "square", "triangle", "star", "cross"];
/// The colours and their RGB values.
pub const COLOURS: [(&str, [u8; 3]); 6] = [
    ("red", [220, 30, 30]),
    ("green", [30, 170, 50]),
    ("blue", [30, 60, 220]),
    ("yellow", [240, 210, 20]),
    ("purple", [140, 40, 180]),
    ("orange", [250, 130, 20]),
];
/// Backgrounds and the range of their gray level.
pub const BACKGROUNDS: [(&str, u8, u8); 3] =
    [("white", 235, 255), ("black", 0, 25), ("gray", 105, 150)];
/// The colour × shape combinations the demo model never saw.
pub const HELD_OUT: [(&str, &str); 5] = [
    ("red", "star"),
    ("green", "cross"),
    ("blue", "triangle"),
    ("yellow", "circle"),
    ("purple", "square"),
];

/// Caption templates: `{a}` the colour's article, `{c}` colour, `{s}` shape, `{ab}` `{b}`
/// the background's article and name.
const TEMPLATES: [&str; 8] = [
    "{a} {c} {s}",
    "{a} {c} {s} on {ab} {b} background",
    "a photo of {a} {c} {s}",
    "a picture of {a} {c} {s} on {ab} {b} background",
    "a drawing of {a} {c} {s}",
    "{a} {c} {s} in front of {ab} {b} background",
    "a {s} that is {c}",
    "there is {a} {c} {s} in the image",
];

/// A small seeded generator (SplitMix64) for the drawings.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    /// Uniform in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// "a" or "an".
pub fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The label of a combination, as the demo's zero-shot evaluation words it ("an orange star").
pub fn label(colour: &str, shape: &str) -> String {
    format!("{} {colour} {shape}", article(colour))
}

/// All 30 labels, colour-major within each shape.
pub fn all_labels() -> Vec<String> {
    SHAPES
        .iter()
        .flat_map(|s| COLOURS.iter().map(move |(c, _)| label(c, s)))
        .collect()
}

fn polygon(shape: &str, cx: f64, cy: f64, r: f64, angle: f64) -> Vec<(f64, f64)> {
    use std::f64::consts::PI;
    let unit: Vec<(f64, f64)> = match shape {
        "square" => (0..4)
            .map(|k| {
                (
                    (PI / 4.0 + k as f64 * PI / 2.0).cos(),
                    (PI / 4.0 + k as f64 * PI / 2.0).sin(),
                )
            })
            .collect(),
        "triangle" => (0..3)
            .map(|k| {
                (
                    (-PI / 2.0 + k as f64 * 2.0 * PI / 3.0).cos(),
                    (-PI / 2.0 + k as f64 * 2.0 * PI / 3.0).sin(),
                )
            })
            .collect(),
        "star" => (0..10)
            .map(|k| {
                let rad = if k % 2 == 0 { 1.0 } else { 0.42 };
                let a = -PI / 2.0 + k as f64 * PI / 5.0;
                (rad * a.cos(), rad * a.sin())
            })
            .collect(),
        _ => {
            let w = 0.32;
            vec![
                (-w, -1.0),
                (w, -1.0),
                (w, -w),
                (1.0, -w),
                (1.0, w),
                (w, w),
                (w, 1.0),
                (-w, 1.0),
                (-w, w),
                (-1.0, w),
                (-1.0, -w),
                (-w, -w),
            ]
        }
    };
    let (ca, sa) = (angle.cos(), angle.sin());
    unit.iter()
        .map(|&(x, y)| (cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)))
        .collect()
}

fn inside(poly: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut result = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let ((xi, yi), (xj, yj)) = (poly[i], poly[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            result = !result;
        }
        j = i;
    }
    result
}

/// Draws one image.
pub fn draw(rng: &mut Rng, colour: [u8; 3], background: (u8, u8), shape: &str) -> RgbImage {
    let w = rng.int(80, 200) as u32;
    let h = ((f64::from(w) * rng.uniform(0.8, 1.25)).round() as u32).clamp(80, 200);
    let jitter = |v: u8, rng: &mut Rng| (i64::from(v) + rng.int(-20, 20)).clamp(0, 255) as u8;
    let fill = Rgb([
        jitter(colour[0], rng),
        jitter(colour[1], rng),
        jitter(colour[2], rng),
    ]);
    let level = rng.int(i64::from(background.0), i64::from(background.1)) as u8;
    let mut img = RgbImage::from_pixel(w, h, Rgb([level; 3]));
    let mut r = rng.uniform(0.26, 0.44) * f64::from(w.min(h));
    let cx = rng.uniform(r + 2.0, f64::from(w) - r - 2.0);
    let cy = rng.uniform(r + 2.0, f64::from(h) - r - 2.0);
    let angle = rng.uniform(-15.0, 15.0).to_radians();
    let poly = (shape != "circle").then(|| polygon(shape, cx, cy, r, angle));
    if shape == "circle" {
        r *= 0.9;
    }
    for (x, y, pixel) in img.enumerate_pixels_mut() {
        let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let hit = match &poly {
            Some(poly) => inside(poly, px, py),
            None => (px - cx).powi(2) + (py - cy).powi(2) <= r * r,
        };
        if hit {
            *pixel = fill;
        }
    }
    img
}

/// One generated image.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The PNG file.
    pub path: PathBuf,
    /// Its caption.
    pub caption: String,
    /// The colour's name.
    pub colour: &'static str,
    /// The shape's name.
    pub shape: &'static str,
}

impl Sample {
    /// Whether its combination is one of [`HELD_OUT`].
    pub fn held_out(&self) -> bool {
        HELD_OUT.contains(&(self.colour, self.shape))
    }
}

/// Draws `per_combination` images of each colour × shape combination (the held-out ones
/// only when `include_held_out`) into `dir` as PNG files, each with a caption from the
/// templates (`label_captions`: the label form "a red circle" only).
pub fn generate(
    dir: &Path,
    per_combination: usize,
    include_held_out: bool,
    label_captions: bool,
    seed: u64,
) -> Vec<Sample> {
    std::fs::create_dir_all(dir).expect("the shapes directory can be created");
    let mut rng = Rng::new(seed);
    let mut samples = Vec::new();
    for shape in SHAPES {
        for (colour, rgb) in COLOURS {
            if !include_held_out && HELD_OUT.contains(&(colour, shape)) {
                continue;
            }
            for k in 0..per_combination {
                let (bg, lo, hi) = BACKGROUNDS[rng.int(0, 2) as usize];
                let img = draw(&mut rng, rgb, (lo, hi), shape);
                let caption = if label_captions {
                    label(colour, shape)
                } else {
                    TEMPLATES[rng.int(0, TEMPLATES.len() as i64 - 1) as usize]
                        .replace("{ab}", article(bg))
                        .replace("{a}", article(colour))
                        .replace("{c}", colour)
                        .replace("{s}", shape)
                        .replace("{b}", bg)
                };
                let path = dir.join(format!("{colour}_{shape}_{k:03}.png"));
                img.save(&path).expect("a PNG can be written");
                samples.push(Sample {
                    path,
                    caption,
                    colour,
                    shape,
                });
            }
        }
    }
    samples
}

/// Writes `samples` as a pairs CSV (image paths relative to its folder).
pub fn write_pairs_csv(path: &Path, samples: &[Sample]) {
    let base = path.parent().expect("the CSV has a folder");
    let mut text = String::from("image,caption\n");
    for s in samples {
        let rel = s.path.strip_prefix(base).unwrap_or(&s.path);
        text.push_str(&format!("{},\"{}\"\n", rel.display(), s.caption));
    }
    std::fs::write(path, text).expect("the pairs CSV can be written");
}
