// Lint: typescript-eslint's recommended rules, plus the layering of shared/STYLE.md:
// native, util, log <- protocol, config <- registry, nodescript, vnfs, power <- nodes, boot, servers <- api, cli <- daemon.
// nodes/ is the domain of the node and group verbs the CLI and the API share (fields, patterns, views).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, forbidden) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((dir) => ({ group: [`**/${dir}/*`, `../${dir}/*`, `../../${dir}/*`], message: `this layer may not import ${dir}/ (see shared/STYLE.md)` })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tap/', 'var/', 'tftp/', 'coverage/', 'vnfs/', 'initramfs/', 'nodescripts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-empty-function': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  // src/native/: the loader of the native build (binding.gyp), a leaf like util/.
  layer(['src/native/**'], ['nodes', 'util', 'log', 'protocol', 'config', 'registry', 'nodescript', 'vnfs', 'power', 'boot', 'servers', 'api', 'cli', 'daemon']),
  layer(['src/util/**'], ['nodes', 'native', 'log', 'protocol', 'config', 'registry', 'nodescript', 'vnfs', 'power', 'boot', 'servers', 'api', 'cli', 'daemon']),
  layer(['src/log/**'], ['nodes', 'protocol', 'config', 'registry', 'nodescript', 'vnfs', 'power', 'boot', 'servers', 'api', 'cli', 'daemon']),
  layer(['src/protocol/**', 'src/config/**'], ['nodes', 'registry', 'nodescript', 'vnfs', 'power', 'boot', 'servers', 'api', 'cli', 'daemon']),
  layer(['src/registry/**', 'src/nodescript/**', 'src/vnfs/**', 'src/power/**'], ['nodes', 'boot', 'servers', 'api', 'cli', 'daemon']),
  layer(['src/nodes/**'], ['boot', 'servers', 'api', 'cli', 'daemon']),
  layer(['src/boot/**'], ['servers', 'api', 'cli', 'daemon']),
  layer(['src/servers/**'], ['nodes', 'registry', 'boot', 'nodescript', 'vnfs', 'power', 'api', 'cli', 'daemon']),
  layer(['src/api/**'], ['cli', 'daemon']),
  layer(['src/cli/**'], ['api']),
  // `provisiond serve` (cli) starts the composition root (daemon); the daemon never imports the CLI.
  layer(['src/daemon/**'], ['cli']),
  { files: ['**/*.js', '**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } } },
  // ui/: the web UI's plain ES modules, run by the browser.
  {
    files: ['ui/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'history', 'fetch', 'EventSource', 'WebSocket', 'AbortController', 'URLSearchParams', 'URL', 'Node', 'HTMLElement', 'ResizeObserver', 'requestAnimationFrame', 'cancelAnimationFrame', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'TextEncoder', 'TextDecoder', 'console', 'navigator'].map((g) => [g, 'readonly']),
      ),
    },
  },
);
