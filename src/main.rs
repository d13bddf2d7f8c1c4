//! The `accsim` command. All logic lives in the library; `cli` parses
//! arguments, prints, and maps errors to exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
