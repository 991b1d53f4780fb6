// The demo embeds ../fixtures with include_dir!, which cannot tell cargo about the files it
// read on stable Rust; this makes a change under fixtures/ rebuild the controller.
fn main() {
    println!("cargo:rerun-if-changed=../fixtures");
}
