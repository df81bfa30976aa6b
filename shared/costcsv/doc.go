// Package costcsv reads Azure cost files (Cost Details reports, exports, portal
// downloads) as a stream of normalised records with exact money and stable ids.
//
// A Reader recognises the file's layout once, from its header, then turns
// every data line into a Record or, for a line it cannot accept, a
// *LineError that the caller quarantines before it asks for the next line.
//
// # Formats
//
// NewReader streams CSV and gzip-compressed CSV (told apart by the gzip
// magic bytes; concatenated gzip members read as one file). Open takes an
// io.ReaderAt and a size and also reads Parquet, which needs random access:
// it picks the format by magic bytes ("PAR1", 1f 8b), and a name ending in
// .parquet or .gz whose content does not match is a *HeaderError. Parquet
// values become the text a CSV export of the same data holds (see
// parquet.go: exact decimals, RFC 3339 timestamps; DOUBLE columns carry
// only 15 to 17 significant digits), so every format yields the same
// records. Memory stays flat whatever the file's size: a line (or a
// 256-row Parquet batch) at a time, plus the counts behind occurrence
// numbers in a fixed budget of about 14 MiB, which holds about 780,000
// distinct natural keys; beyond, counts spill to temporary files
// (Options.TempDir, 12 bytes a key) that Close removes (see
// occurrences.go).
//
// CSV follows RFC 4180 as encoding/csv reads it (csvscan.go is checked
// against it): quoted fields may hold commas, quotes and newlines; LF or
// CRLF; blank lines are skipped; a leading UTF-8 byte order mark is
// skipped. A quoted field left open to the end of the file is fatal, not a
// bad line, and so is a record longer than 32 MiB.
//
// # Headers
//
// Column names are matched case-insensitively and in any order; a localized
// name "Localized name (EnglishName)" counts as EnglishName; a BOM and
// spaces around names are ignored. Schemas are tried in this order and the
// first whose required columns are present wins:
//
//	focus-1.0, -1.2, -1.0-preview  BilledCost, EffectiveCost, ChargePeriodStart; the version from
//	                               1.2-only columns (PricingCurrency, SkuPriceDetails, ...) or
//	                               1.0-preview-only ones (x_ChargeId, ChargeSubcategory, ...).
//	                               FOCUS 1.0r2 has 1.0's columns: it reads as focus-1.0
//	mca   costInBillingCurrency, date (or UsageDateTime), and one column only MCA files have
//	      (billingCurrency, pricingCurrency, costInUsd, paygCostInBillingCurrency, ...)
//	ea    Date and CostInBillingCurrency or Cost (currency BillingCurrencyCode, BillingCurrency or Currency)
//	payg  UsageDateTime and PreTaxCost (currency Currency)
//
// An unrecognised header is a *HeaderError that names, per schema tried,
// the columns it lacks. The currency column is not required: opencost's
// lower-cased template layout has none. Records of such a file have an
// empty BillingCurrency and Totals keeps them apart under the empty
// currency.
//
// # Values
//
// "NULL" (any case) and the empty string mean "no value" everywhere; Raw
// keeps the text as written.
//
//   - The usage date is required. Accepted forms: MM/dd/yyyy, M/d/yyyy,
//     M/d/yy, yyyy-MM-dd, yyyyMMdd, yyyy-MM-ddTHH:mm:ss[.fffffff][Z|±hh:mm]
//     and yyyy-MM-dd HH:mm:ss, read as UTC. FOCUS period ends are exclusive
//     and kept so; the inclusive BillingPeriodEndDate of EA and MCA files
//     becomes the exclusive day after (Record.BillingPeriodEnd).
//   - The billed cost (and FOCUS EffectiveCost) is required: an empty one is
//     a bad line, never a zero, because every real cost line states its cost
//     (zero-cost lines say "0"). Quantity may be empty (FOCUS leaves it null
//     on non-usage rows): it is then 0. CostInPricingCurrency and CostInUSD
//     are nil when empty or absent. Amounts are exact decimals, plain or with
//     an exponent ("1.5E-05"), negative for refunds, within ±60 of exponent
//     and 80 characters; 28 significant digits are common in FOCUS files.
//   - Tags and AdditionalInfo (FOCUS x_SkuDetails) must be JSON objects; a
//     brace-less fragment (the EA Tags form) is read as the object it
//     abbreviates; empty means an empty object.
//
// # Identity
//
// Record.ID hashes the line's natural key (see key.go): the schema family,
// the usage date (and hour, for hourly FOCUS rows), and the columns Microsoft
// flags as identifying a line — resource id, meter, subscription, billing
// account/profile, invoice section, account owner, part number/product,
// offer, cost center, location, service info, unit, tags and additional info
// as canonical JSON — plus charge type, pricing model and benefit id; for
// FOCUS files the finops-toolkit's FOCUS unique-id columns. Lines identical in
// all of these are numbered 1, 2, ... in file order (Record.Occurrence), and
// the number is part of the id, so two lines of a file never share an id and
// reordering a file's lines keeps its set of ids. Options.Part is mixed in
// when above 0.
package costcsv
