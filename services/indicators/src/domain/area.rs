//! Areas an indicator is reported for, interned to small numbers for the
//! aggregation core. National (England, code `ENG`) is always number 0.

use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use throughcare_platform::identifiers::{
    LocalAuthorityCode, OdsCode, OrganisationCode, PrisonCode,
};
use throughcare_platform::identity::AreaType;
use throughcare_proto::events::v1::ObservationAreas;
use throughcare_proto::types::v1 as pb;

/// The code of the one national area.
pub const NATIONAL_CODE: &str = "ENG";

/// The kinds of area, in reporting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AreaKind {
    National,
    ProbationRegion,
    ProbationDeliveryUnit,
    IntegratedCareBoard,
    LocalAuthority,
    Prison,
}

impl AreaKind {
    /// The kinds a person's place names (everything but national), in the
    /// order of [`Place`]'s slots.
    pub const PLACED: [AreaKind; 5] = [
        AreaKind::ProbationRegion,
        AreaKind::ProbationDeliveryUnit,
        AreaKind::IntegratedCareBoard,
        AreaKind::LocalAuthority,
        AreaKind::Prison,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AreaKind::National => "national",
            AreaKind::ProbationRegion => "probation_region",
            AreaKind::ProbationDeliveryUnit => "probation_delivery_unit",
            AreaKind::IntegratedCareBoard => "integrated_care_board",
            AreaKind::LocalAuthority => "local_authority",
            AreaKind::Prison => "prison",
        }
    }

    pub fn number(self) -> i16 {
        self.to_proto() as i16
    }

    pub fn from_number(n: i16) -> Option<Self> {
        Self::from_proto(pb::AreaType::try_from(i32::from(n)).ok()?)
    }

    pub fn to_proto(self) -> pb::AreaType {
        match self {
            AreaKind::National => pb::AreaType::National,
            AreaKind::ProbationRegion => pb::AreaType::ProbationRegion,
            AreaKind::ProbationDeliveryUnit => pb::AreaType::ProbationDeliveryUnit,
            AreaKind::IntegratedCareBoard => pb::AreaType::IntegratedCareBoard,
            AreaKind::LocalAuthority => pb::AreaType::LocalAuthority,
            AreaKind::Prison => pb::AreaType::Prison,
        }
    }

    pub fn from_proto(t: pb::AreaType) -> Option<Self> {
        Some(match t {
            pb::AreaType::Unspecified => return None,
            pb::AreaType::National => AreaKind::National,
            pb::AreaType::ProbationRegion => AreaKind::ProbationRegion,
            pb::AreaType::ProbationDeliveryUnit => AreaKind::ProbationDeliveryUnit,
            pb::AreaType::IntegratedCareBoard => AreaKind::IntegratedCareBoard,
            pb::AreaType::LocalAuthority => AreaKind::LocalAuthority,
            pb::AreaType::Prison => AreaKind::Prison,
        })
    }

    pub fn from_config(t: AreaType) -> Self {
        match t {
            AreaType::National => AreaKind::National,
            AreaType::ProbationRegion => AreaKind::ProbationRegion,
            AreaType::ProbationDeliveryUnit => AreaKind::ProbationDeliveryUnit,
            AreaType::IntegratedCareBoard => AreaKind::IntegratedCareBoard,
            AreaType::LocalAuthority => AreaKind::LocalAuthority,
            AreaType::Prison => AreaKind::Prison,
        }
    }

    /// Whether `code` is well formed for this kind of area.
    pub fn check(self, code: &str) -> Result<(), String> {
        let result = match self {
            AreaKind::National if code == NATIONAL_CODE => Ok(()),
            AreaKind::National => return Err(format!("the national area is {NATIONAL_CODE:?}")),
            AreaKind::ProbationRegion | AreaKind::ProbationDeliveryUnit => {
                OrganisationCode::parse(code).map(drop)
            }
            AreaKind::IntegratedCareBoard => OdsCode::parse(code).map(drop),
            AreaKind::LocalAuthority => LocalAuthorityCode::parse(code).map(drop),
            AreaKind::Prison => PrisonCode::parse(code).map(drop),
        };
        result.map_err(|e| e.to_string())
    }
}

/// An area by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Area {
    pub kind: AreaKind,
    pub code: Box<str>,
}

impl Area {
    pub fn national() -> Self {
        Area {
            kind: AreaKind::National,
            code: NATIONAL_CODE.into(),
        }
    }

    pub fn to_proto(&self) -> pb::Area {
        pb::Area {
            r#type: self.kind.to_proto() as i32,
            code: self.code.to_string(),
        }
    }
}

/// Where a person was at one observation: an area number per kind in
/// [`AreaKind::PLACED`] order, 0 where unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Place(pub [u32; 5]);

/// The interned areas, and which region each delivery unit was seen in.
#[derive(Debug, Clone)]
pub struct Areas {
    ids: FxHashMap<Area, u32>,
    list: Vec<Area>,
    regions_of_unit: FxHashMap<u32, BTreeSet<u32>>,
}

impl Default for Areas {
    fn default() -> Self {
        let mut areas = Areas {
            ids: FxHashMap::default(),
            list: Vec::new(),
            regions_of_unit: FxHashMap::default(),
        };
        areas.intern(Area::national());
        areas
    }
}

impl Areas {
    pub fn intern(&mut self, area: Area) -> u32 {
        if let Some(&id) = self.ids.get(&area) {
            return id;
        }
        let id = self.list.len() as u32;
        self.list.push(area.clone());
        self.ids.insert(area, id);
        id
    }

    pub fn get(&self, id: u32) -> &Area {
        &self.list[id as usize]
    }

    pub fn id(&self, area: &Area) -> Option<u32> {
        self.ids.get(area).copied()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every area seen so far.
    pub fn iter(&self) -> impl Iterator<Item = &Area> {
        self.list.iter()
    }

    /// The region a delivery unit belongs to: the (alphabetically first)
    /// region it was observed with.
    pub fn region_of(&self, unit: u32) -> Option<u32> {
        self.regions_of_unit
            .get(&unit)?
            .iter()
            .min_by(|a, b| self.get(**a).code.cmp(&self.get(**b).code))
            .copied()
    }

    /// Interns the areas an observation names, checking each code's form.
    pub fn place(&mut self, areas: Option<&ObservationAreas>) -> Result<Place, String> {
        let Some(a) = areas else {
            return Ok(Place::default());
        };
        let codes = [
            &a.probation_region,
            &a.probation_delivery_unit,
            &a.integrated_care_board,
            &a.local_authority,
            &a.prison,
        ];
        let mut place = Place::default();
        for ((slot, kind), code) in place.0.iter_mut().zip(AreaKind::PLACED).zip(codes) {
            if code.is_empty() {
                continue;
            }
            kind.check(code)
                .map_err(|e| format!("areas.{}: {e}", kind.as_str()))?;
            *slot = self.intern(Area {
                kind,
                code: code.as_str().into(),
            });
        }
        let [region, unit, ..] = place.0;
        if region != 0 && unit != 0 {
            self.regions_of_unit.entry(unit).or_default().insert(region);
        }
        Ok(place)
    }
}
