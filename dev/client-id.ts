// The client id the local IdP registers for tests, the demo and the bench. Entra's client ids
// are GUIDs and the gateway refuses anything else (so the guide's placeholder cannot start it):
// the stand-in uses one too. Kept apart from dev/idp.ts so importing it loads nothing.
export const DEV_CLIENT_ID = '3c5f7e9a-1b2d-4c6e-8f0a-2b4d6f8a0c1e'
