npm install .
