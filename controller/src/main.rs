fn main() {
    std::process::exit(benchvm::main(std::env::args_os()));
}
