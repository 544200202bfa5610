//! powershell.exe's command line, as Windows PowerShell 5.1's console host reads it, for the
//! part provd uses: `-NoLogo -NoProfile -NonInteractive -File <path>`.
//!
//! What 5.1 accepts and this follows: a switch starts with `-`, `--` or `/`; names are
//! case-insensitive and may be shortened down to a minimum (`-nol`, `-nop`, `-noni`, `-f`);
//! switches come in any order; empty arguments are skipped; `-File` ends the parsing: the
//! next argument is the script and every later one is an argument to the script (provd's
//! scripts take none and ignore them). The first argument that is no switch at all starts
//! a command (`-Command` is the default), so an unknown `-Foo` is run as the command `-Foo`.
//!
//! What the stand-in does not do: run commands (`-Command`, `-EncodedCommand`, the
//! default command), an interactive shell (no arguments, `-NoExit`), or any other switch
//! of 5.1: those are refused with a `LAB STAND-IN` line after PowerShell's own text where
//! there is one. The texts are 5.1's as far as known; the missing-file one is verbatim from
//! public logs (with exit code -196608, 0xFFFD0000).

/// The console host's exit code for a bad command line (0xFFFD0000).
pub const EXIT_BAD_COMMAND_LINE: i32 = -196_608;

/// What to do with the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// `-?`, `-Help`, `/?`: print the banner.
    Help,
    /// `-File <path>` with the switches provd passes.
    File {
        path: String,
        /// After the path: the script's own arguments (ignored).
        script_args: Vec<String>,
        non_interactive: bool,
    },
    /// Refused: print `stderr` and exit with `exit_code`.
    Refuse { stderr: String, exit_code: i32 },
}

/// Windows PowerShell 5.1's switches: name and shortest accepted prefix, in the order the
/// console host tries them.
const SWITCHES: &[(&str, &str)] = &[
    ("help", "h"),
    ("?", "?"),
    ("noexit", "noe"),
    ("importsystemmodules", "imp"),
    ("showinitialprompt", "show"),
    ("noprofile", "nop"),
    ("nologo", "nol"),
    ("noninteractive", "noni"),
    ("servermode", "s"),
    ("interactive", "i"),
    ("configurationname", "config"),
    ("command", "c"),
    ("windowstyle", "w"),
    ("file", "f"),
    ("executionpolicy", "ex"),
    ("ep", "ep"),
    ("encodedcommand", "e"),
    ("ec", "ec"),
    ("encodedarguments", "encodeda"),
    ("ea", "ea"),
    ("inputformat", "inp"),
    ("if", "if"),
    ("outputformat", "o"),
    ("of", "of"),
    ("psconsolefile", "psc"),
    ("version", "v"),
    ("sta", "sta"),
    ("mta", "mta"),
];

/// The switch `key` (without its `-`/`/`) names, if any.
fn switch(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    SWITCHES
        .iter()
        .find(|(name, shortest)| name.starts_with(&key) && key.len() >= shortest.len())
        .map(|(name, _)| *name)
}

const NOT_A_COMMAND_HOST: &str = "LAB STAND-IN: this powershell.exe runs no commands and no \
     interactive shell, only provd's scripts: powershell.exe -NoLogo -NoProfile -NonInteractive \
     -File <script.ps1> (powershell.exe -? for what it is)";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Invocation {
    let mut non_interactive = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].trim();
        i += 1;
        if arg.is_empty() {
            continue;
        }
        let key = match arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix(['-', '/']))
        {
            Some(key) => key,
            None => return command(arg),
        };
        let Some(name) = switch(key) else {
            return command(arg);
        };
        match name {
            "help" | "?" => return Invocation::Help,
            "nologo" | "noprofile" => {}
            "noninteractive" => non_interactive = true,
            "file" => {
                let Some(path) = args.get(i) else {
                    return Invocation::Refuse {
                        stderr: "The command cannot be run because the File parameter requires a \
                                 file path. Supply a path for the File parameter and then try the \
                                 command again.\r\n"
                            .into(),
                        exit_code: EXIT_BAD_COMMAND_LINE,
                    };
                };
                return Invocation::File {
                    path: path.clone(),
                    script_args: args[i + 1..].to_vec(),
                    non_interactive,
                };
            }
            other => {
                return Invocation::Refuse {
                    stderr: format!(
                        "LAB STAND-IN: -{other} is a switch of Windows PowerShell that this \
                         stand-in does not support.\r\n{NOT_A_COMMAND_HOST}\r\n"
                    ),
                    exit_code: 1,
                };
            }
        }
    }
    Invocation::Refuse {
        stderr: format!("{NOT_A_COMMAND_HOST}\r\n"),
        exit_code: 1,
    }
}

/// `arg` starts a command: PowerShell would run it; no such command exists here.
fn command(arg: &str) -> Invocation {
    Invocation::Refuse {
        stderr: format!(
            "{arg} : The term '{arg}' is not recognized as the name of a cmdlet, function, script \
             file, or operable program. Check the spelling of the name, or if a path was included, \
             verify that the path is correct and try again.\r\n\
             At line:1 char:1\r\n\
             \x20   + CategoryInfo          : ObjectNotFound: ({arg}:String) [], CommandNotFoundException\r\n\
             \x20   + FullyQualifiedErrorId : CommandNotFoundException\r\n\r\n\
             {NOT_A_COMMAND_HOST}\r\n"
        ),
        exit_code: 1,
    }
}

/// `-File <path>` names no file (verbatim 5.1 text).
pub fn file_missing(path: &str) -> Invocation {
    Invocation::Refuse {
        stderr: format!(
            "The argument '{path}' to the -File parameter does not exist. Provide the path to an \
             existing '.ps1' file as an argument to the -File parameter.\r\n"
        ),
        exit_code: EXIT_BAD_COMMAND_LINE,
    }
}

/// `-File <path>` without the `.ps1` extension.
pub fn not_ps1(path: &str) -> Invocation {
    Invocation::Refuse {
        stderr: format!(
            "Processing -File '{path}' failed because the file does not have a '.ps1' extension. \
             Specify a valid Windows PowerShell script file name, and then try again.\r\n"
        ),
        exit_code: EXIT_BAD_COMMAND_LINE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Vec<String> {
        line.iter().map(|s| s.to_string()).collect()
    }

    fn file(path: &str, non_interactive: bool) -> Invocation {
        Invocation::File {
            path: path.into(),
            script_args: Vec::new(),
            non_interactive,
        }
    }

    #[test]
    fn provds_command_line_in_any_order_and_spelling() {
        let p = r"C:\ProgramData\provd\scripts\add-domain.ps1";
        for line in [
            &["-NoLogo", "-NoProfile", "-NonInteractive", "-File", p][..],
            &["-NonInteractive", "-NoProfile", "-NoLogo", "-File", p],
            &["-nologo", "-noprofile", "-noninteractive", "-file", p],
            &["-NOL", "-NOP", "-NONI", "-F", p],
            &["/NoLogo", "/NoProfile", "/NonInteractive", "/File", p],
            &["--NoLogo", "", "--noprofile", "-NonInteractive", "-File", p],
        ] {
            assert_eq!(parse(&args(line)), file(p, true), "{line:?}");
        }
        assert_eq!(parse(&args(&["-File", p])), file(p, false));
        // Everything after the script is the script's.
        assert_eq!(
            parse(&args(&["-NonInteractive", "-File", p, "-NoProfile", "x"])),
            Invocation::File {
                path: p.into(),
                script_args: args(&["-NoProfile", "x"]),
                non_interactive: true
            }
        );
    }

    #[test]
    fn help_prints_the_banner() {
        for h in ["-?", "/?", "-help", "-Help", "-h", "--help"] {
            assert_eq!(parse(&args(&["-NoLogo", h])), Invocation::Help, "{h}");
        }
    }

    #[test]
    fn the_rest_is_refused_as_powershell_would_or_as_the_stand_in() {
        let refused = |line: &[&str]| match parse(&args(line)) {
            Invocation::Refuse { stderr, exit_code } => (stderr, exit_code),
            other => panic!("{line:?}: {other:?}"),
        };
        let (text, code) = refused(&["-NoLogo", "-File"]);
        assert!(
            text.starts_with(
                "The command cannot be run because the File parameter requires a file path."
            ),
            "{text}"
        );
        assert_eq!(code, EXIT_BAD_COMMAND_LINE);
        // Too short to be a switch, or no switch at all: the start of a command.
        for word in ["-no", "-Foo", "Get-Date", "-n"] {
            let (text, code) = refused(&["-NoProfile", word, "-File", "x.ps1"]);
            assert!(
                text.starts_with(&format!("{word} : The term '{word}' is not recognized")),
                "{text}"
            );
            assert!(text.contains("FullyQualifiedErrorId : CommandNotFoundException"));
            assert!(text.contains("LAB STAND-IN"));
            assert_eq!(code, 1);
        }
        for switch in [
            "-Command",
            "-c",
            "-EncodedCommand",
            "-ExecutionPolicy",
            "-ep",
            "-NoExit",
            "-Version",
        ] {
            let (text, code) = refused(&[switch, "Bypass", "-File", "x.ps1"]);
            assert!(text.starts_with("LAB STAND-IN: -"), "{switch}: {text}");
            assert_eq!(code, 1);
        }
        let (text, code) = refused(&[]);
        assert!(text.starts_with("LAB STAND-IN"), "{text}");
        assert_eq!(code, 1);
        let (text, _) = refused(&["-NoLogo", "-NoProfile"]);
        assert!(text.contains("-File <script.ps1>"), "{text}");
    }

    #[test]
    fn file_errors_are_powershells() {
        let Invocation::Refuse { stderr, exit_code } = file_missing(r"C:\x\gone.ps1") else {
            panic!()
        };
        assert_eq!(
            stderr,
            "The argument 'C:\\x\\gone.ps1' to the -File parameter does not exist. Provide the \
             path to an existing '.ps1' file as an argument to the -File parameter.\r\n"
        );
        assert_eq!(exit_code, -196_608);
        assert_eq!(exit_code as u32, 0xFFFD_0000);
        let Invocation::Refuse { stderr, .. } = not_ps1("a.txt") else {
            panic!()
        };
        assert!(stderr.contains("does not have a '.ps1' extension"));
    }
}
