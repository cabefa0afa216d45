#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _global: &super::Global) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
