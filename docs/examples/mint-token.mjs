// Issues a client token for a gateway started with --jwt-secret (WSGATE_JWT_SECRET). In a backend this
// is the body of a "give me a token" route for a signed-in user; here, a script:
//   WSGATE_JWT_SECRET=… node docs/examples/mint-token.mjs user-42
import { SignJWT } from 'jose';

const secret = new TextEncoder().encode(process.env.WSGATE_JWT_SECRET);
const token = await new SignJWT({
  subscribe: ['news', 'chat.*'], // topic patterns this user may subscribe to (absent: any)
  publish: ['chat.*'], // and publish to, when the gateway runs with --client-publish
})
  .setProtectedHeader({ alg: 'HS256' })
  .setSubject(process.argv[2] ?? 'anonymous') // who it is: logged by the gateway
  .setExpirationTime('15m') // the gateway closes the connection (1008) when it passes
  .sign(secret);
console.log(token);
