/** The version a node reports (GET /node/version) and measures itself by (virtual host data). */
export const CONSORTIA_VERSION = "0.1.0";
