fn main() {
    std::process::exit(benchvm_agent::cli::main(std::env::args_os()));
}
