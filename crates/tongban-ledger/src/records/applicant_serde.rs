//! [`ApplicantRecord`]'s two spellings: tagged inside in JSON, by
//! variant position in postcard, chosen by the format's
//! `is_human_readable`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ApplicantRecord;
use tongban_core::{CreditCode, Phone, ResidentId};

macro_rules! spelling {
    ($name:ident $(, $attr:meta)?) => {
        #[derive(Serialize, Deserialize)]
        $(#[$attr])?
        #[serde(rename_all = "kebab-case")]
        enum $name {
            Person {
                name: String,
                resident_id: ResidentId,
                phone: Phone,
                address: String,
            },
            Company {
                name: String,
                credit_code: CreditCode,
                legal_rep_name: String,
                legal_rep_id: ResidentId,
                phone: Phone,
                address: String,
            },
        }

        impl From<$name> for ApplicantRecord {
            fn from(a: $name) -> Self {
                match a {
                    $name::Person { name, resident_id, phone, address } => {
                        Self::Person { name, resident_id, phone, address }
                    }
                    $name::Company {
                        name,
                        credit_code,
                        legal_rep_name,
                        legal_rep_id,
                        phone,
                        address,
                    } => Self::Company {
                        name,
                        credit_code,
                        legal_rep_name,
                        legal_rep_id,
                        phone,
                        address,
                    },
                }
            }
        }
    };
}

spelling!(Tagged, serde(tag = "kind"));
spelling!(Positional);

impl Serialize for ApplicantRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeStruct, SerializeStructVariant};
        // By hand, from borrowed fields: the derived spellings would
        // need an owned copy of the record for every write.
        let (index, variant, fields): (u32, &'static str, Vec<(&'static str, &str)>) = match self {
            Self::Person {
                name,
                resident_id,
                phone,
                address,
            } => (
                0,
                "person",
                vec![
                    ("name", name),
                    ("resident_id", resident_id.as_str()),
                    ("phone", phone.as_str()),
                    ("address", address),
                ],
            ),
            Self::Company {
                name,
                credit_code,
                legal_rep_name,
                legal_rep_id,
                phone,
                address,
            } => (
                1,
                "company",
                vec![
                    ("name", name),
                    ("credit_code", credit_code.as_str()),
                    ("legal_rep_name", legal_rep_name),
                    ("legal_rep_id", legal_rep_id.as_str()),
                    ("phone", phone.as_str()),
                    ("address", address),
                ],
            ),
        };
        if s.is_human_readable() {
            let mut st = s.serialize_struct("ApplicantRecord", fields.len() + 1)?;
            st.serialize_field("kind", variant)?;
            for (k, v) in fields {
                st.serialize_field(k, v)?;
            }
            st.end()
        } else {
            let mut st =
                s.serialize_struct_variant("ApplicantRecord", index, variant, fields.len())?;
            for (k, v) in fields {
                st.serialize_field(k, v)?;
            }
            st.end()
        }
    }
}

impl<'de> Deserialize<'de> for ApplicantRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            Tagged::deserialize(d).map(Into::into)
        } else {
            Positional::deserialize(d).map(Into::into)
        }
    }
}
