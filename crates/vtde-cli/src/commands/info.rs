//! `vtde info PACKAGE [--provider ...]`: the package's manifest in words, the ONNX
//! Runtime library in use (path, version, providers it has), and for each graph the
//! provider that runs it, with where ONNX Runtime placed its nodes.

use anyhow::Result;
use vtde_runtime::manifest::{GraphFile, Manifest, ResizeRule};
use vtde_runtime::{onnxruntime_info, GraphPlacement};

use crate::args::InfoArgs;
use crate::commands::open_model;
use crate::settings;

pub fn run(args: &InfoArgs) -> Result<()> {
    let settings = settings::Info::from_args(args);
    let model = open_model(&settings.package, &settings.runtime)?;
    let ort = onnxruntime_info(settings.runtime.onnxruntime_library.as_deref())?;
    let mut out = describe_manifest(&settings.package.display().to_string(), model.manifest());
    out.push_str(&format!(
        "ONNX Runtime {} ({})\n  providers it has: {}\n",
        ort.version,
        ort.path.display(),
        ort.providers.join(", ")
    ));
    let asked: Vec<&str> = settings
        .runtime
        .execution_providers
        .iter()
        .map(|p| p.name())
        .collect();
    out.push_str(&format!(
        "running the {} graphs on (asked: {}):\n",
        model.package().precision(),
        if asked.is_empty() {
            "CPU".to_owned()
        } else {
            asked.join(", ")
        }
    ));
    for placement in model.placements() {
        out.push_str(&describe_placement(placement));
    }
    print!("{out}");
    Ok(())
}

/// The manifest in words.
fn describe_manifest(package: &str, m: &Manifest) -> String {
    let mut s = format!(
        "package {package} (format version {}, written by {} {})\n  {} with a {} vision \
         tower and a {} text tower, {}-dimensional embeddings, logit scale exp({}) = {:.4}\n",
        m.format_version,
        m.producer.name,
        m.producer.version,
        m.source.architecture,
        m.source.vision_model_type,
        m.source.text_model_type,
        m.projection_dim,
        m.logit_scale,
        m.logit_scale.exp()
    );
    let img = &m.image;
    let mut steps = Vec::new();
    if img.convert_rgb {
        steps.push("convert to RGB".to_owned());
    }
    if let Some(r) = &img.resize {
        let rule = match r.rule {
            ResizeRule::Exact { height, width } => format!("{width}x{height}"),
            ResizeRule::ShortestEdge { shortest_edge } => {
                format!("shortest edge {shortest_edge}")
            }
        };
        steps.push(format!("resize to {rule} ({:?})", r.filter).to_lowercase());
    }
    if let Some(c) = &img.center_crop {
        steps.push(format!("center crop {}x{}", c.width, c.height));
    }
    if let Some(f) = img.rescale_factor {
        steps.push(format!("rescale by {f}"));
    }
    if let Some(n) = &img.normalize {
        steps.push(format!(
            "normalize with mean {:?} and std {:?}",
            n.mean, n.std
        ));
    }
    s.push_str(&format!(
        "  images: {}x{} pixel values; {}\n",
        img.width,
        img.height,
        steps.join(", ")
    ));
    let t = &m.text;
    s.push_str(&format!(
        "  texts: {} (up to {} tokens, padded with id {}), inputs {}\n",
        t.tokenizer,
        t.max_length,
        t.pad_token_id,
        t.inputs.join(", ")
    ));
    for (name, g) in [
        ("vision", &m.graphs.vision),
        ("text", &m.graphs.text),
        ("projection", &m.graphs.projection),
    ] {
        s.push_str(&format!("  {name} graph: {}\n", describe_graph(g)));
    }
    s
}

fn describe_graph(g: &GraphFile) -> String {
    let mut precisions = vec![g.precision.to_string()];
    precisions.extend(g.variants.iter().map(|v| v.precision.to_string()));
    format!(
        "{} (opset {}, {} outputs; precisions {})",
        g.file,
        g.opset,
        g.output_dim,
        precisions.join(", ")
    )
}

/// One line per graph: the provider and where the nodes went.
fn describe_placement(p: &GraphPlacement) -> String {
    let nodes: Vec<String> = p
        .nodes
        .iter()
        .map(|(provider, n)| format!("{n} nodes on {provider}"))
        .collect();
    let mut s = format!("  {}: {} ({})\n", p.graph, p.provider, nodes.join(", "));
    if let Some(why) = &p.fallback {
        s.push_str(&format!("    fell back: {why}\n"));
    }
    if !p.cpu_nodes.is_empty() {
        s.push_str(&format!(
            "    kept on the CPU: {}\n",
            p.cpu_nodes.join(", ")
        ));
    }
    s
}
