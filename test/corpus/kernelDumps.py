#!/usr/bin/env python3
"""Regenerates kernel-dumps.json: what a real kernel dumps for every `add` of commands.txt.

usage: kernelDumps.py ORACLE   (ORACLE: a tc flower VM runner taking IN.json OUT.json
       --guest-hook FILE, such as the team's kernel-vm oracle.sh; see docs/rules.md)

Each rule goes on `dev b ingress` at its own prio (skip_sw left out: veth has no
offload); then tcdump.c, built static here, dumps chains and filters as hex.
"""
import base64, json, os, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main(oracle):
    lines = [l.strip() for l in open(os.path.join(HERE, 'commands.txt')) if l.strip() and not l.startswith('#')]
    rules, src = [], []
    for l in lines:
        w = l.split()
        if w[0] != 'add' or 'skip_sw' in w:
            continue
        out, j = [], 1
        while j < len(w):
            if w[j] == 'dev' and j < 4:
                j += 2
            elif w[j] in ('ingress', 'egress') and j < 5:
                j += 1
            elif w[j] in ('prio', 'pref'):
                out += ['prio', str(len(rules) + 1)]
                j += 2
            else:
                out.append(w[j])
                j += 1
        if 'prio' not in out:
            out = ['prio', str(len(rules) + 1)] + out
        rules.append(' '.join(out))
        src.append(l)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(['gcc', '-O2', '-static', '-o', f'{d}/tcdump', os.path.join(HERE, 'tcdump.c')], check=True)
        subprocess.run(['strip', f'{d}/tcdump'], check=True)
        b64 = base64.encodebytes(open(f'{d}/tcdump', 'rb').read()).decode()
        hook = (f'base64 -d > /tmp/tcdump <<"B64EOF"\n{b64}B64EOF\nchmod +x /tmp/tcdump\n'
                'ip -o link | sed "s/@.*//" | awk \'{print "LINK", $1, $2}\'\n/tmp/tcdump b\n'
                'echo TEXT-BEGIN; $TC filter show dev b ingress; echo TEXT-END\n'
                'echo STEXT-BEGIN; $TC -s filter show dev b ingress; echo STEXT-END\n')
        open(f'{d}/hook.sh', 'w').write(hook)
        json.dump({'rules': rules, 'packets': [], 'devices': ['vf0', 'vf1', 'vf2', 'vf3', 'uplink']}, open(f'{d}/in.json', 'w'))
        subprocess.run([oracle, f'{d}/in.json', f'{d}/out.json', '--guest-hook', f'{d}/hook.sh', '--timeout', '600'], check=True)
        o = json.load(open(f'{d}/out.json'))
    bad = [(src[i], r['error']) for i, r in enumerate(o['rules']) if not r['ok']]
    if bad:
        sys.exit('the kernel refused:\n' + '\n'.join(f'  {c}: {e}' for c, e in bad))
    h = o['hook_output']
    links = {}
    for l in h.splitlines():
        if l.startswith('LINK '):
            _, i, n = l.split()
            links[n.rstrip(':')] = int(i.rstrip(':'))
    fl = [l.split()[1] for l in h.splitlines() if l.startswith('FILTER ')]
    ch = [l.split()[1] for l in h.splitlines() if l.startswith('CHAIN ')]
    byprio = {}
    for x in fl:
        b = bytes.fromhex(x)
        info, hd = struct.unpack_from('<I', b, 32)[0], struct.unpack_from('<I', b, 24)[0]
        byprio.setdefault(info >> 16, {})['filter' if hd else 'head'] = x
    entries = [{'cmd': c, 'kernelArgs': r, 'head': byprio[i + 1]['head'], 'filter': byprio[i + 1]['filter']} for i, (c, r) in enumerate(zip(src, rules))]
    sect = lambda a, b: h[h.index(a) + len(a) + 1:h.index(b)]
    out = {'kernel': o['kernel'],
           'how': 'tc filter add dev b ingress <kernelArgs> for each entry in one VM, then an RTM_GETCHAIN and an RTM_GETTFILTER dump of dev b ingress (parent ffff:fff2), each reply message as hex; text = tc filter show dev b ingress, stext = tc -s filter show',
           'ifindex': links, 'chains': ch, 'dumpOrder': [struct.unpack_from('<I', bytes.fromhex(x), 32)[0] >> 16 for x in fl],
           'entries': entries, 'text': sect('TEXT-BEGIN', 'TEXT-END'), 'stext': sect('STEXT-BEGIN', 'STEXT-END'), 'json': o['filters']}
    json.dump(out, open(os.path.join(HERE, 'kernel-dumps.json'), 'w'), indent=1)
    print(f'{len(entries)} filters from {o["kernel"]}')


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
