// The scripted browser lives in dev/ so that the bench signs in with the same one.
export * from '../../dev/sign-in-client.js'
