fn main() {
    std::process::exit(benchvm::cli::main(std::env::args_os()));
}
