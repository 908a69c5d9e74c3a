// Free ports and redis-server live in dev/ so that the bench starts them the same way.
export { freePort, isAddressInUse, withFreePort } from '../../dev/ports.js'
export { startRedis, startRedisOn, type RedisServer } from '../../dev/redis-server.js'
