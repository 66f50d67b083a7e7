fn main() {
    for src in [
        "a:\nb: 1\n",
        "{x: 1, b}\n",
        "m:\n  k:\n  # c\nn: 2\n",
        "{x: 1, \"n\": \"i\",\n 4.0\"\n}\n",
    ] {
        for d in graceful_inject::yaml_tree::Documents::new(src) {
            let r = d.unwrap().root.unwrap();
            fn show(src: &str, n: &graceful_inject::yaml_tree::Node, depth: usize) {
                println!(
                    "{}{:?} {}..{} {:?}",
                    " ".repeat(depth),
                    n.as_str(),
                    n.start,
                    n.end,
                    &src[n.start..n.end]
                );
                for (k, v) in n.as_map().unwrap_or_default() {
                    show(src, k, depth + 1);
                    show(src, v, depth + 2);
                }
            }
            println!("== {src:?}");
            show(src, &r, 0);
        }
    }
}
