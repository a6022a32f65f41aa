/** KeyRing port: encrypts small secrets (API key copies, tenant credentials) at rest. */
export interface KeyRing {
  readonly describe: string;
  encrypt(plaintext: Buffer): Promise<Buffer>;
  decrypt(ciphertext: Buffer): Promise<Buffer>;
  /** Checks the key material is usable without changing anything (for doctor). */
  check(): Promise<void>;
}
