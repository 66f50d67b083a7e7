fn main() {
    let path = std::env::args().nth(1).unwrap();
    let src = std::fs::read_to_string(path).unwrap();
    let t = std::time::Instant::now();
    let n = saphyr_parser::Parser::new_from_str(&src).count();
    eprintln!("raw events: {n} in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let n = graceful_inject::yaml_tree::Documents::new(&src).count();
    eprintln!("documents: {n} in {:?}", t.elapsed());
}
