//! graceful-inject: rewrites Kubernetes manifests so the right containers get
//! graceful-wait preStop hooks. The rewriting itself is the next issue's work;
//! until then this prints its usage and exits 2, so nothing mistakes it for a
//! working injector.

const USAGE: &str = "\
usage: graceful-inject SOURCE CONFIG [OUTPUT]

Rewrites the Kubernetes manifests in SOURCE so the containers named in CONFIG
get graceful-wait preStop hooks. Not implemented yet: this build changes nothing.";

fn main() {
    eprintln!("{USAGE}");
    std::process::exit(2);
}
