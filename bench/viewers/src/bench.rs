//! `sealcast-bench`: the benchmarks' driver (issue 46 item 4). Its commands, their
//! families and the code that runs them are in the library: [`viewers::driver`].

fn main() -> anyhow::Result<()> {
    viewers::driver::main()
}
