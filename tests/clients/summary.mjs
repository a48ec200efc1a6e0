// The contract's JavaScript client, unchanged: fetch + URLSearchParams.
// Usage: node summary.mjs BASE TOKEN START END
const [BASE, token, start_time, end_time] = process.argv.slice(2);
const response = await fetch(BASE + "/v1/audit/events:summary?" + new URLSearchParams({start_time, end_time}), {headers: {Authorization: "Bearer " + token}});
process.stdout.write(JSON.stringify({status: response.status, body: await response.json()}));
