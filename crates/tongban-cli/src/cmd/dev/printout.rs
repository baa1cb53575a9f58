//! The printout after the sample run: ready-made commands for trying the
//! clerk, reviewer, mail and auditor paths by hand with the profiles
//! `tongban dev` wrote, and the web console for each, quoted for a POSIX shell.

use tongban_sandbox::{HANTAI, YANTA};

use super::Federation;
use super::fixtures::{
    ADDRESS, PERSON_ID, PERSON_NAME, PHONE, RESULT_FILE, licence_no, seconds_now, waybill,
};

/// Quotes `s` for a POSIX shell if it needs it.
fn sh(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `cargo run --release --` when running from a cargo build, else this binary.
fn command_prefix() -> String {
    match std::env::current_exe() {
        Ok(exe) if exe.components().any(|c| c.as_os_str() == "target") => {
            "cargo run --release --".to_owned()
        }
        Ok(exe) => sh(&exe.display().to_string()),
        Err(_) => "tongban".to_owned(),
    }
}

/// Prints the commands for trying the clerk, reviewer, mail and auditor
/// paths by hand against the running federation.
pub(super) fn print_commands(fed: &Federation, case_no: &str) {
    let dir = &fed.dir;
    let t = command_prefix();
    let d = |rel: &str| sh(&dir.join(rel).display().to_string());
    let as_ = |profile: &str| {
        format!(
            "TONGBAN_PROFILE={} {t}",
            d(&format!("profiles/{profile}.toml"))
        )
    };
    let clerk = as_("clerk-610702");
    let zhou = as_("clerk-611002");
    let reviewer = as_("reviewer-610113");
    let secs = seconds_now();
    let (w1, w2) = (waybill("EC", secs), waybill("ED", secs));
    let lines = [
        "The federation keeps running. Try it by hand, from this directory (NEW is the case_no that apply prints):".to_owned(),
        String::new(),
        "  # clerk wang at the 汉台区 window (610702): the cases, the sample case, a new case".to_owned(),
        format!("  {clerk} window list"),
        format!("  {clerk} window status {case_no}"),
        format!(
            "  {clerk} window apply --item GT-0001 --home {YANTA} --delivery mail-applicant --person-name {} --person-id {PERSON_ID} --phone {PHONE} --address {} --material id-card={} --material application-form={} --material premises-proof={}",
            sh(PERSON_NAME),
            sh(ADDRESS),
            d("samples/id-card.jpg"),
            d("samples/application-form.pdf"),
            d("samples/lease-contract.pdf"),
        ),
        format!("  {clerk} window verify-identity NEW --method id-card-reader"),
        format!("  {clerk} window accept NEW"),
        "  # reviewer li at 雁塔区 (610113), the home authority".to_owned(),
        format!("  {reviewer} review inbox"),
        format!("  {reviewer} review accept NEW"),
        "  # mail: the paper originals to 雁塔区, then the decision and the result back".to_owned(),
        format!("  {clerk} mail send NEW --leg materials --carrier EMS --waybill {w1}"),
        format!("  {reviewer} review paper-received NEW"),
        format!(
            "  {reviewer} review approve NEW --result {} --licence-no {}",
            d(&format!("samples/{RESULT_FILE}")),
            licence_no(secs + 1)
        ),
        format!("  {reviewer} mail send NEW --leg result --carrier EMS --waybill {w2}"),
        format!("  {reviewer} mail event --waybill {w2} --status delivered"),
        "  # clerk zhou at the 商州区 window (611002)".to_owned(),
        format!("  {zhou} window list"),
        "  # province auditor zhao: the sample case across both nodes' ledgers".to_owned(),
        format!(
            "  {t} audit trace {case_no} --node {} --node {} --profile {}",
            fed.endpoint(HANTAI),
            fed.endpoint(YANTA),
            d("profiles/auditor.toml")
        ),
        "  # the web console, one per identity: each prints a one-time URL to open in a browser on this machine".to_owned(),
        format!("  {t} console --profile {} --listen 127.0.0.1:8080", d("profiles/clerk-610702.toml")),
        format!("  {t} console --profile {} --listen 127.0.0.1:8081", d("profiles/reviewer-610113.toml")),
        format!("  {t} console --profile {} --listen 127.0.0.1:8082", d("profiles/auditor.toml")),
        String::new(),
        "Press Ctrl-C to stop every node.".to_owned(),
    ];
    println!("{}", lines.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(
            sh("tongban-dev/profiles/a.toml"),
            "tongban-dev/profiles/a.toml"
        );
        assert_eq!(sh("张三"), "'张三'");
        assert_eq!(sh("it's"), r"'it'\''s'");
    }
}
