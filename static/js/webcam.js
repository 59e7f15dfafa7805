// The webcam, for the pages that take a picture with it (face detection, pose estimation):
// offer it where the browser has one (secure pages only), start it into a <video>, and take
// the current frame as an image file.
const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);

export const hasCamera = () => Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

// Show the webcam buttons (rows hidden by the template) where a webcam can be asked for.
export function offerCamera(rows) {
  if (!hasCamera()) return;
  for (const row of rows) row.hidden = false;
}

// Start the webcam in `video` and swap the start button for the shoot one; on refusal, the
// reason filled into `failedTemplate` ("...: %(reason)s") is returned, else "".
export async function startCamera(video, form, failedTemplate) {
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    return fill(failedTemplate, { reason: error.message || error.name });
  }
  await video.play();
  video.hidden = false;
  form.querySelector("[data-camera=shoot]").hidden = false;
  form.querySelector("[data-camera=start]").hidden = true;
  return "";
}

// The video's current frame as a JPEG blob (null when the browser cannot encode it).
export function takePicture(video) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.92));
}
