// Runs the devnet wallet/miner in its own process, as the `bitdrop devnet` CLI or a shell script would:
//   node devnet-wallet-cli.ts pay DIR ADDRESS SATS | bump DIR TXID SATS | cancel DIR TXID | mine DIR N | reorg DIR DEPTH [DROP_TXID…]
// Prints the result as JSON on stdout; exits 1 with the error message on stderr.

import { devnetBump, devnetCancel, devnetMine, devnetPay, devnetReorg } from '../../lib/devnet/wallet';

async function main(argv: string[]): Promise<unknown> {
  const [command, dir, ...rest] = argv;
  switch (command) {
    case 'pay':
      return devnetPay(dir, rest[0], BigInt(rest[1]));
    case 'bump':
      return devnetBump(dir, rest[0], { sats: BigInt(rest[1]) });
    case 'cancel':
      return devnetCancel(dir, rest[0]);
    case 'mine':
      return devnetMine(dir, Number(rest[0] ?? 1));
    case 'reorg':
      return devnetReorg(dir, Number(rest[0]), { dropTxids: rest.slice(1) });
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (result) => process.stdout.write(JSON.stringify(result) + '\n'),
  (err: Error) => {
    process.stderr.write(err.message + '\n');
    process.exitCode = 1;
  },
);
