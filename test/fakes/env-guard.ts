/**
 * Imported first by every test that talks to a Google fake: an auth or metadata lookup that slips
 * past the fakes must fail fast and locally, never reach for the network or real credentials.
 */
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.GCE_METADATA_HOST = '127.0.0.1:1';
process.env.GCE_METADATA_IP = '127.0.0.1:1';
delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
delete process.env.GOOGLE_CLOUD_PROJECT;
delete process.env.GCLOUD_PROJECT;
export {};
