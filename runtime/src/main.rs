use berth::cli::{Cli, Command};
use berth::commands;
use berth::logging;

fn main() {
    // A panic is a bug, never an answer: if one happens all the same, it is reported as one error
    // line (runc's format, in the log too), not a Rust backtrace dump.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        logging::fatal(&anyhow::anyhow!(
            "internal error (a bug in berth){at}: {what}"
        ));
    }));
    let cli = Cli::parse_runc_style();
    let g = &cli.global;
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        // Before anything is opened: only these fds of the caller's may pass into a container.
        if let Err(e) = berth::process::record_inherited_fds() {
            eprintln!("berth: error: {e:#}");
            std::process::exit(1);
        }
    }
    if let Err(e) = logging::init(g.log.as_deref(), g.log_format, g.debug) {
        eprintln!(
            "berth: error: --log {}: {e}",
            g.log
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        );
        std::process::exit(1);
    }
    let result = match &cli.command {
        Command::Create(a) => commands::create::run(g, a).map(|_| 0),
        Command::Start(a) => commands::start::run(&g.root, &a.id).map(|_| 0),
        Command::State(a) => commands::state::run(&g.root, &a.id).map(|_| 0),
        Command::Kill(a) => commands::kill::run(&g.root, &a.id, &a.signal, a.all).map(|_| 0),
        Command::Delete(a) => commands::delete::run(&g.root, &a.id, a.force).map(|_| 0),
        Command::Run(a) => commands::run::run(g, a),
        Command::Spec(a) => commands::spec::run(&a.bundle, a.rootless).map(|_| 0),
        Command::Exec(a) => match commands::exec::run(g, a) {
            // runc's exit code for an exec that failed to start
            Err(e) => {
                logging::fatal(&e.context("exec failed"));
                std::process::exit(255)
            }
            ok => ok,
        },
        Command::Ps(a) => commands::ps::run(&g.root, a).map(|_| 0),
        Command::List(a) => commands::list::run(&g.root, a.format, a.quiet).map(|_| 0),
        Command::Pause(a) => commands::pause::run(&g.root, &a.id).map(|_| 0),
        Command::Resume(a) => commands::resume::run(&g.root, &a.id).map(|_| 0),
        Command::Events(a) => commands::events::run(&g.root, a).map(|_| 0),
        Command::Update(a) => commands::update::run(&g.root, a).map(|_| 0),
        Command::Features => commands::features::run().map(|_| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            logging::fatal(&e);
            std::process::exit(1);
        }
    }
}
