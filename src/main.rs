//! The `tailor` binary: everything lives in the library (`tailor::app`).

fn main() -> std::process::ExitCode {
    tailor::app::main()
}
