fn main() {
    let a: Vec<String> = std::env::args().collect();
    let variants = std::env::var("VARIANTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| match p {
            "int8" => Some(vtde_export::Precision::Int8),
            "fp16" => Some(vtde_export::Precision::Fp16),
            _ => None,
        })
        .collect();
    let r = vtde_export::export_with(
        std::path::Path::new(&a[1]),
        std::path::Path::new(&a[2]),
        &vtde_export::ExportOptions { variants },
        &mut |s| eprintln!("{s}"),
    );
    match r {
        Ok(e) => println!("{}", serde_json::to_string_pretty(&e.manifest).unwrap()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    }
}
