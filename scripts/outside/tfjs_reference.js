// Reference run of an @upscalerjs model with the TensorFlow.js runtime (pure-JS CPU backend),
// to check scripts/outside/tfjs_layers.py against it. Not used to make data.
//
//   npm install --prefix /tmp/outside/node @tensorflow/tfjs@4.22.0
//   NODE_PATH=/tmp/outside/node/node_modules node scripts/outside/tfjs_reference.js \
//       PACKAGE_DIR models/x2/model.json IN.f32 H W OUT.f32
//
// IN.f32: little-endian float32 NHWC (1, H, W, 3) in the model's input range; OUT.f32 gets the
// prediction (1, sH, sW, 3). The package's own esrgan.js registers its custom layers
// (MultiplyBeta, PixelShuffle<N>x) exactly as UpscalerJS does before loading.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [pkgDir, modelRel, inPath, h, w, outPath] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const esrgan = require(path.resolve(pkgDir, 'dist/cjs/packages/shared/src/esrgan/esrgan.js'));
  for (const s of [2, 3, 4, 8]) {
    // PixelShuffle class names depend on the scale; register every scale the package ships.
    const d = esrgan.getESRGANModelDefinition({
      scale: s, name: 'x', version: '0', meta: { architecture: 'rrdn' },
    });
    d.setup(tf);
  }
  const modelPath = path.resolve(pkgDir, modelRel);
  const spec = JSON.parse(fs.readFileSync(modelPath));
  const specs = [];
  const bufs = [];
  for (const g of spec.weightsManifest) {
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(path.dirname(modelPath), p)));
    specs.push(...g.weights);
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: spec.modelTopology, weightSpecs: specs, weightData,
  }));
  const raw = fs.readFileSync(inPath);
  const data = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const x = tf.tensor4d(data, [1, Number(h), Number(w), 3]);
  const y = model.predict(x);
  const out = await y.data();
  fs.writeFileSync(outPath, Buffer.from(out.buffer));
  console.log(JSON.stringify({ shape: y.shape }));
}

main().catch((e) => { console.error(e); process.exit(1); });
