// Package geoip finds a provider's location (country, city, autonomous
// system and ip type) in offline MaxMind-format databases (.mmdb files:
// GeoLite2/GeoIP2 City, Country, ASN, ISP, Connection-Type, Anonymous-IP,
// Enterprise, or a database of the same layout built with mmdbwriter).
//
// What is read from a record, in order of preference:
//
//   - country: country.iso_code, else registered_country.iso_code;
//   - city: city.names.en;
//   - ASN: autonomous_system_number (GeoLite2-ASN, GeoIP2-ISP), else
//     traits.autonomous_system_number (GeoIP2-Enterprise);
//   - ip type: the openmyst field ip_type ("residential", "hosting" or
//     "mobile"; any other value is an error), else traits.user_type
//     ("residential" → residential, "cellular" → mobile, "hosting" and
//     "content_delivery_network" → hosting), else connection_type
//     ("Cable/DSL" and "Dialup" → residential, "Cellular" → mobile), else
//     is_hosting_provider or traits.is_hosting_provider true → hosting.
//     Otherwise the ip type is not detected and the caller's default
//     (residential) applies.
//
// Several files can be opened as one DB (e.g. a City and an ASN database):
// each field comes from the first file that has it.
//
// Only public addresses are looked up (see Public): a provider behind NAT
// must never announce the location of 10.0.0.1. A Locator combines the
// database, the address to look up (explicit, or the first public one the
// p2p host knows) and the operator's --location.* flags, which always win
// field by field.
package geoip
