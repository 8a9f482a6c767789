fn main() {
    let a: Vec<String> = std::env::args().collect();
    let r = vtde_export::export(std::path::Path::new(&a[1]), std::path::Path::new(&a[2]), &mut |s| eprintln!("{s}"));
    match r { Ok(e) => println!("{}", serde_json::to_string_pretty(&e.manifest).unwrap()), Err(e) => { eprintln!("error: {e}"); std::process::exit(2) } }
}
