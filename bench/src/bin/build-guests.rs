//! Builds the test programs as components and prints the directory holding them.

fn main() -> anyhow::Result<()> {
    println!("{}", verge_bench::guest_components()?.display());
    Ok(())
}
