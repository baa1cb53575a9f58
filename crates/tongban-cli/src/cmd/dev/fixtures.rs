//! The sample's data: the applicant, the materials and the result
//! document (also written to `samples/` for trying by hand), and valid
//! waybill and licence numbers that differ from run to run.

use sha2::{Digest, Sha256};
use tongban_sandbox::YANTA;

/// The sample applicant.
pub(super) const PERSON_NAME: &str = "张三";
pub(super) const PERSON_ID: &str = "11010519491231002X";
pub(super) const PHONE: &str = "13812345678";
pub(super) const ADDRESS: &str = "陕西省汉中市汉台区北大街1号";

pub(super) fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// The sample's materials: kind, file name, contents.
pub(super) fn sample_materials() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let pdf = |title: &str| {
        format!(
            "%PDF-1.4\n% tongban dev sample: {title}\n% 申请人 {PERSON_NAME} {PERSON_ID}\n%%EOF\n"
        )
        .into_bytes()
    };
    vec![
        (
            "id-card",
            "id-card.jpg",
            format!("JFIF sample scan: 居民身份证 {PERSON_NAME} {PERSON_ID} (front and back)\n")
                .repeat(64)
                .into_bytes(),
        ),
        (
            "application-form",
            "application-form.pdf",
            pdf("个体工商户登记申请书 (signed)"),
        ),
        (
            "premises-proof",
            "lease-contract.pdf",
            pdf("经营场所使用证明: 房屋租赁合同, 雁塔区小寨东路1号"),
        ),
    ]
}

pub(super) const RESULT_FILE: &str = "licence.pdf";

pub(super) fn result_document() -> Vec<u8> {
    format!(
        "%PDF-1.4\n% tongban dev sample: 营业执照 (个体工商户), 经营者 {PERSON_NAME}, 雁塔区市场监督管理局\n%%EOF\n"
    )
    .into_bytes()
}

pub(super) fn seconds_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A valid UPU S10 waybill for `prefix` and the last eight digits of `n`.
pub(super) fn waybill(prefix: &str, n: u64) -> String {
    tongban_core::Waybill::s10(prefix, n)
        .map(|w| w.to_string())
        .expect("the sample uses valid service indicators (EA, EB)")
}

/// A valid unified social credit code of an individual business (92…) in
/// 雁塔区, the licence number of the sample's result.
pub(super) fn licence_no(n: u64) -> String {
    let body = format!("92{YANTA}MA6{:06}", n % 1_000_000);
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .map(|c| format!("{body}{c}"))
        .find(|code| tongban_core::CreditCode::parse(code).is_ok())
        .unwrap_or_else(|| format!("{body}0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waybills_pass_the_s10_check() {
        for n in [0, 47312482, 12345678, 99999999, 1_732_000_000] {
            for prefix in ["EA", "EB", "EC", "ED"] {
                let w = waybill(prefix, n);
                tongban_core::Waybill::parse(&w).unwrap_or_else(|e| panic!("{w}: {e}"));
            }
        }
        assert_eq!(waybill("EA", 47312482), "EA473124829CN");
    }

    #[test]
    fn licence_numbers_are_valid_credit_codes() {
        for n in [0, 1, 123456, 999_999, 1_732_000_000] {
            let l = licence_no(n);
            tongban_core::CreditCode::parse(&l).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
    }
}
